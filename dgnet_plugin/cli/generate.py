"""Use a trained generator (a checkpoint of tools/train_net.py): the commands of the method
the config belongs to (ENGINE.NAME; each method package lists its generation_commands).

    python tools/generate.py COMMAND --config-file CFG --weights W [command options]

DG-Net's commands (dgnet_plugin/methods/dgnet/commands.py):

    swap --images DIR_OR_FILES... [--num 8] --output swap.jpg
    interpolate --image-a A.jpg --image-b B.jpg [--steps 8] --output-dir interp/
    dataset --source DATA_ROOT --output-dir dg_market/ [--per-image 1] [--include-real]
"""

from __future__ import annotations

import argparse
import logging
import sys

import dgnet_plugin  # noqa: F401 (registers everything)
from dgnet_plugin.config import METHODS, ConfigError, load_cfg_file, method_of_engine
from dgnet_plugin.engine.loading import load_model
from dgnet_plugin.utils.cli import run_cli


def commands() -> dict:
    """``{command: (method, help, add_arguments, run)}`` over the registered methods."""
    out = {}
    for m in METHODS.values():
        for name, (help_, add_args, run) in m.generation_commands.items():
            out[name] = (m, help_, add_args, run)
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config-file", required=True, metavar="FILE", help="the run's config")
    common.add_argument("--weights", required=True, metavar="FILE", help="model_final.pth")
    common.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 or auto (default)")
    common.add_argument("--batch-size", type=int, default=32, help="images per generator call")
    sub = p.add_subparsers(dest="command", required=True)
    for name, (method, help_, add_args, _) in commands().items():
        add_args(sub.add_parser(name, parents=[common], help=f"{method.title}: {help_}"))
    return p


def main(args) -> dict:
    method, _, _, run = commands()[args.command]
    owner = method_of_engine(load_cfg_file(args.config_file).ENGINE.NAME, args.config_file)
    if owner is not method:
        raise ConfigError(
            f"{args.config_file}: '{args.command}' is a {method.title} command but the config "
            f"is a {owner.title} config (ENGINE.NAME); pass the config the weights were "
            "trained with"
        )
    model, cfg = load_model(args.config_file, args.weights, args.device)
    return run(args, model, cfg)


def cli(argv=None) -> int:
    # ValueError: the generation tools report bad inputs (mismatched manifest, ...) with it
    return run_cli(main, build_parser().parse_args(argv), extra_errors=(ValueError,))


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sys.exit(cli())
