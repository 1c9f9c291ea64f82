"""Train or evaluate any engine of dgnet_plugin (the detectron2 / fastreid CLI shape).

    python tools/train_net.py --config-file configs/dgnet_r50.yml \
        [--eval-only] [--resume] [--stage NAME] [--num-gpus N] [KEY VALUE ...]
    torchrun --nproc_per_node N tools/train_net.py --config-file configs/dgnet_r50.yml ...

Several processes (torchrun, or --num-gpus N which starts N local processes itself; with
--num-machines/--machine-rank/--dist-url on several machines): NCCL on CUDA, gloo on CPU;
SOLVER.IMS_PER_BATCH is the global batch, split over the processes; rank 0 writes all
outputs.

OUTPUT_DIR receives config.yaml, log.txt, metrics.json, TensorBoard events, checkpoints
(model_XXXXXXX.pth, model_final.pth, last_checkpoint) and images/. ENGINE.NAME selects the
method (dgnet_plugin/methods/<name>/): its config keys, and the step it runs before training
(e.g. DG-Net trains its teacher when MODEL.TEACHER.WEIGHTS does not exist yet).
"""

from __future__ import annotations

import argparse
import logging
import sys

from torch.multiprocessing import ProcessExitedException

import dgnet_plugin  # noqa: F401 (registers everything)
from dgnet_plugin.config import load_cfg_file
from dgnet_plugin.engine.evaluation import evaluate_checkpoint
from dgnet_plugin.engine.launch import distributed_session, launch
from dgnet_plugin.engine.run import default_setup, launch_training
from dgnet_plugin.utils.cli import run_cli
from dgnet_plugin.utils.run_lock import RunLock

logger = logging.getLogger("dgnet_plugin")


def default_argument_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--config-file", required=True, metavar="FILE", help="path to a YAML config")
    p.add_argument(
        "--eval-only",
        action="store_true",
        help="evaluate MODEL.WEIGHTS on DATASETS.TESTS and exit (no training set is read: "
        "the identity count comes from the checkpoint)",
    )
    p.add_argument(
        "--resume", action="store_true", help="continue from the newest complete checkpoint"
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="start from scratch in an OUTPUT_DIR that holds checkpoints (they are deleted)",
    )
    p.add_argument(
        "--num-gpus",
        type=int,
        default=1,
        help="processes to start on this machine (one per GPU; on CPU, gloo processes). "
        "Not with torchrun, which starts them itself",
    )
    p.add_argument("--num-machines", type=int, default=1, help="machines of a --num-gpus run")
    p.add_argument("--machine-rank", type=int, default=0, help="this machine's rank (0-based)")
    p.add_argument(
        "--dist-url",
        default="auto",
        help="tcp://HOST:PORT of machine 0 (auto: a free local port, one machine only)",
    )
    p.add_argument(
        "--stage",
        default=None,
        metavar="NAME",
        help="run one stage of the method's pipeline (offline methods: translator training, "
        "generation, then 'train' = the re-ID training); default: every stage in order, "
        "finished ones reused",
    )
    p.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides")
    return p


def main(args) -> dict:
    """Train or evaluate in this process; joins the process group of torchrun / --num-gpus
    (``WORLD_SIZE`` > 1) for the duration."""
    device = load_cfg_file(args.config_file, args.opts).MODEL.DEVICE
    with distributed_session(device):
        return _main(args)


def _main(args) -> dict:
    if not args.eval_only:
        return launch_training(
            args.config_file, args.opts, args.resume, args.overwrite, stage=args.stage
        )
    # no training set: the identity count comes from MODEL.WEIGHTS
    cfg = load_cfg_file(args.config_file, args.opts, freeze=False)
    with RunLock(cfg.OUTPUT_DIR):
        return evaluate_checkpoint(default_setup(cfg, args.config_file, args.opts))


def _spawned_main(args) -> None:
    """One process of a --num-gpus run: a user error ends it with exit status 2."""
    status = run_cli(main, args)
    if status:
        sys.exit(status)


def _launch(args) -> None:
    launch(
        _spawned_main,
        args.num_gpus,
        args.num_machines,
        args.machine_rank,
        args.dist_url,
        args=(args,),
    )


def cli(argv=None) -> int:
    """Exit status: 0, 2 for a user error (in any process); a bug raises."""
    args = default_argument_parser().parse_args(argv)
    if args.num_gpus * args.num_machines <= 1:
        return run_cli(main, args)
    try:
        return run_cli(_launch, args)
    except ProcessExitedException as e:  # one process failed; launch stopped the others
        return e.exit_code if e.exit_code and e.exit_code > 0 else 1


if __name__ == "__main__":
    sys.exit(cli())
