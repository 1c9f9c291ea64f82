#!/usr/bin/env python
"""Train or evaluate any engine of dgnet_plugin (the detectron2 / fastreid CLI shape).

    python tools/train_net.py --config-file configs/dgnet_r50.yml \
        [--eval-only] [--resume] [--num-gpus N] [KEY VALUE ...]
    torchrun --nproc_per_node N tools/train_net.py --config-file configs/dgnet_r50.yml ...

Several processes (torchrun, or --num-gpus N which starts N local processes itself; with
--num-machines/--machine-rank/--dist-url on several machines): NCCL on CUDA, gloo on CPU;
DATALOADER.IMS_PER_BATCH is the global batch, split over the processes; rank 0 writes all
outputs.

OUTPUT_DIR receives config.yaml, log.txt, metrics.json, TensorBoard events, checkpoints
(model_XXXXXXX.pth, model_final.pth, last_checkpoint) and images/. For DG-Net, when
MODEL.TEACHER.WEIGHTS does not exist and MODEL.TEACHER.CONFIG is set, the teacher is trained
first with that config on the same DATASETS (and reused on later runs).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from torch.multiprocessing import ProcessExitedException

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import dgnet_plugin  # noqa: E402,F401 (registers everything)
from dgnet_plugin.config import ConfigError, load_cfg_file  # noqa: E402
from dgnet_plugin.engine import build_engine  # noqa: E402
from dgnet_plugin.engine.launch import distributed_session, launch  # noqa: E402
from dgnet_plugin.model_zoo import is_remote_spec  # noqa: E402
from dgnet_plugin.utils import comm  # noqa: E402
from dgnet_plugin.utils import torchreid_compat as tr  # noqa: E402
from dgnet_plugin.utils.cli import run_cli  # noqa: E402
from dgnet_plugin.utils.events import setup_logger  # noqa: E402

logger = logging.getLogger("dgnet_plugin")


def default_argument_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--config-file", required=True, metavar="FILE", help="path to a YAML config")
    p.add_argument("--eval-only", action="store_true", help="evaluate MODEL.WEIGHTS and exit")
    p.add_argument("--resume", action="store_true", help="continue from OUTPUT_DIR/last_checkpoint")
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
    p.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides")
    return p


def setup(config_file: str, opts: list, freeze: bool = True):
    """Config (file + overrides), OUTPUT_DIR with config.yaml and log.txt (rank 0)."""
    cfg = load_cfg_file(config_file, opts, freeze=False)
    os.makedirs(cfg.OUTPUT_DIR, exist_ok=True)
    setup_logger(cfg.OUTPUT_DIR)
    logger.info("Config %s with overrides %s:\n%s", config_file, opts, cfg.dump())
    if comm.is_main_process():
        with open(os.path.join(cfg.OUTPUT_DIR, "config.yaml"), "w") as f:
            f.write(cfg.dump())
    if freeze:
        cfg.freeze()
    return cfg


def seeded_engine(cfg):
    """The engine of ``cfg``, built right after seeding with ``SEED + rank`` (each process its
    own augmentation and dropout randomness), so that a run starts from the same random state
    whatever ran before it in the process (a DG-Net run that first trained its teacher
    included)."""
    tr.utils.set_random_seed(cfg.SEED + comm.get_rank())
    return build_engine(cfg)


def ensure_teacher(cfg) -> None:
    """Train the DG-Net teacher with MODEL.TEACHER.CONFIG when its weights do not exist."""
    t = cfg.MODEL.TEACHER
    if is_remote_spec(t.WEIGHTS):
        return  # zoo:// or a URL: load_teacher downloads it, there is nothing to train
    if cfg.ENGINE.NAME != "DGNetEngine" or cfg.LOSS.TEACHER_MAX <= 0 or os.path.isfile(t.WEIGHTS):
        if os.path.isfile(t.WEIGHTS):
            logger.info("Reusing teacher %s", t.WEIGHTS)
        return
    if not t.CONFIG:
        return  # load_teacher raises with instructions
    if os.path.basename(t.WEIGHTS) != "model_final.pth":
        raise ConfigError(
            f"MODEL.TEACHER.WEIGHTS '{t.WEIGHTS}' must end in model_final.pth to be trained "
            "from MODEL.TEACHER.CONFIG (it names the teacher's OUTPUT_DIR)"
        )
    opts = ["OUTPUT_DIR", os.path.dirname(t.WEIGHTS), "MODEL.DEVICE", cfg.MODEL.DEVICE]
    for key in ("ROOT", "NAMES", "TESTS"):
        opts += [f"DATASETS.{key}", str(cfg.DATASETS[key])]
    logger.info("Teacher %s not found: training it with %s", t.WEIGHTS, t.CONFIG)
    tcfg = setup(t.CONFIG, opts)
    engine = seeded_engine(tcfg)
    engine.resume_or_load(resume=True)
    engine.train()
    setup_logger(cfg.OUTPUT_DIR)


def main(args) -> dict:
    """Train or evaluate in this process; joins the process group of torchrun / --num-gpus
    (``WORLD_SIZE`` > 1) for the duration."""
    device = load_cfg_file(args.config_file, args.opts).MODEL.DEVICE
    with distributed_session(device):
        return _main(args)


def _main(args) -> dict:
    cfg = setup(args.config_file, args.opts, freeze=False)
    if args.eval_only:
        if not cfg.MODEL.WEIGHTS:
            raise ConfigError("--eval-only needs MODEL.WEIGHTS (a checkpoint written by training)")
        cfg.MODEL.BACKBONE.PRETRAIN = False  # every weight comes from MODEL.WEIGHTS
        cfg.freeze()
        engine = seeded_engine(cfg)
        engine.checkpointer.load(cfg.MODEL.WEIGHTS, checkpointables=[])
        return engine.test()
    cfg.freeze()
    ensure_teacher(cfg)
    engine = seeded_engine(cfg)
    engine.resume_or_load(resume=args.resume)
    return engine.train()


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
