"""A training run in its ``OUTPUT_DIR``: every check before any work, then train.

:func:`launch_training` is what ``tools/train_net.py`` runs: it reads the config once and
hands it to :func:`run_pipeline`, the one pipeline runner (the method's stages, then its
engine); a training stage's derived config is trained by :func:`run_training`. In order:
the config is validated (core rules and the method's ``config_rules``), ``OUTPUT_DIR`` is
checked writable and locked for the run's lifetime (a second run into it exits with status 2
naming the holder), stale temporary checkpoint files are removed, a fresh start over existing
checkpoints is refused unless asked to overwrite, a ``--resume`` whose ``SOLVER`` values
changed is refused (except the ones that only lengthen or shorten the run), ``config.yaml``
and ``log.txt`` are written, the stages run, the Market-layout data folders are scanned, and
only then is the engine built.
"""

from __future__ import annotations

import contextlib
import logging
import os

from ..config import ConfigError, load_cfg_file, method_of_engine
from ..config.validate import (
    diff_solver,
    format_diff,
    key_under,
    read_run_config,
    validate_config,
)
from ..data.build import parse_dataset_entry
from ..data.scan import scan_market_folder_report
from ..errors import UserError
from ..utils import comm
from ..utils import torchreid_compat as tr
from ..utils.checkpoint import check_fresh_start, remove_stale_files
from ..utils.events import setup_logger
from ..utils.run_lock import RunLock, check_output_dir_writable

logger = logging.getLogger("dgnet_plugin")

#: ``SOLVER`` keys a ``--resume`` may change: they set how long the run is and how often it
#: saves, not what an iteration does.
RESUMABLE_SOLVER_KEYS = ("SOLVER.MAX_ITER", "SOLVER.CHECKPOINT_PERIOD", "SOLVER.CHECKPOINT_KEEP")


class DatasetProblemError(UserError, ValueError):
    """The dataset scan found a folder that cannot be evaluated (no query has a match)."""


def check_resume_config(cfg, output_dir: str, keys: tuple[str, ...] | None = None) -> None:
    """On ``--resume``: compare ``SOLVER`` with the ``config.yaml`` the run wrote. Changes of
    :data:`RESUMABLE_SOLVER_KEYS` are logged; any other change is refused, since the
    optimiser and scheduler states come from the checkpoint and would silently differ.
    ``keys``: only these ``SOLVER`` keys or sub-nodes count (the engine's
    ``SOLVER_KEYS``, e.g. ``("SOLVER.GEN", "SOLVER.DIS")`` for a translator stage); a change
    elsewhere in ``SOLVER`` is logged as not used by this run. ``None``: all of ``SOLVER``.

    Raises:
        ConfigError: listing every changed key with its old and new value.
    """
    old = read_run_config(output_dir)
    if old is None:
        return
    # a key the old run did not have (added by a later release) takes its default: not a change
    diffs = [d for d in diff_solver(old, cfg) if d[1] is not None]
    if keys is not None:
        used = [d for d in diffs if key_under(d[0], keys + RESUMABLE_SOLVER_KEYS)]
        unused = [d for d in diffs if d not in used]
        if unused:
            logger.info("Resuming: changed SOLVER values this engine does not read: %s",
                        format_diff(unused))  # fmt: skip
        diffs = used
    allowed = [d for d in diffs if d[0] in RESUMABLE_SOLVER_KEYS]
    refused = [d for d in diffs if d[0] not in RESUMABLE_SOLVER_KEYS]
    if refused:
        raise ConfigError(
            f"--resume in '{output_dir}' with SOLVER values that differ from its config.yaml: "
            f"{format_diff(refused)}; the optimiser and schedule states come from the "
            "checkpoint, so they would not apply. Resume with the old values, or start a new "
            "OUTPUT_DIR with MODEL.WEIGHTS set to the checkpoint"
        )
    if allowed:
        logger.warning("Resuming with changed %s", format_diff(allowed))


def engine_solver_keys(cfg) -> tuple[str, ...] | None:
    """The ``SOLVER_KEYS`` of the engine ``ENGINE.NAME`` names (``None``: all of ``SOLVER``)."""
    from ..utils.registry import lookup
    from .build import ENGINE_REGISTRY

    return lookup(ENGINE_REGISTRY, cfg.ENGINE.NAME, "ENGINE.NAME").SOLVER_KEYS


def scan_datasets(cfg) -> None:
    """Scan every ``market_layout`` folder of ``DATASETS.NAMES`` / ``DATASETS.TESTS`` (each
    under its own root when written ``market_layout@root``; ``DATASETS.SCAN``) and log the
    reports (rank 0; the others wait). A folder is scanned once.

    Raises:
        DatasetProblemError: a test folder has queries but none with a true match.
    """
    mode = cfg.DATASETS.SCAN
    if mode not in ("quick", "full", "off"):
        raise ConfigError(f"DATASETS.SCAN '{mode}' is unknown; choose quick, full or off")
    roots: dict[str, bool] = {}  # root -> used as a test set
    for entries, is_test in ((cfg.DATASETS.NAMES, False), (cfg.DATASETS.TESTS, True)):
        for entry in entries:
            name, root = parse_dataset_entry(entry, cfg.DATASETS.ROOT)
            if name == "market_layout":
                roots[root] = roots.get(root, False) or is_test
    if mode != "off" and comm.is_main_process():
        for k, (root, is_test) in enumerate(roots.items()):
            cache = "dataset_scan.json" if k == 0 else f"dataset_scan_{k}.json"
            scan = scan_market_folder_report(
                root,
                min_size=tuple(cfg.DATASETS.MIN_IMAGE_SIZE),
                decode=mode == "full",
                cache_path=os.path.join(cfg.OUTPUT_DIR, cache),
            )
            logger.info("Dataset scan of %s:\n%s", root, scan.format())
            counts = scan.counts.get("query")
            if is_test and counts and counts.images:
                if len(scan.unmatched_queries) >= counts.images:
                    raise DatasetProblemError(
                        f"none of the {counts.images} queries of '{root}' has a true match "
                        "(same pid, other camera) in bounding_box_test/: the evaluation would "
                        "fail after training; fix the folder or DATASETS.TESTS"
                    )
    comm.synchronize()


@contextlib.contextmanager
def open_run(cfg, resume: bool, overwrite: bool = False, extra_rules=()):
    """The checks before any work (see the module doc), holding the ``OUTPUT_DIR`` lock
    until the ``with`` block ends.

    Raises:
        ConfigError: an invalid value, an unwritable ``OUTPUT_DIR`` or a refused resume.
        RunLockedError: another run holds ``OUTPUT_DIR``.
        CheckpointError: checkpoints exist and neither ``resume`` nor ``overwrite``.
    """
    validate_config(cfg, extra_rules)
    out = cfg.OUTPUT_DIR
    check_output_dir_writable(out)
    with RunLock(out):
        if comm.is_main_process():
            for path in remove_stale_files(out):
                logger.info("Removed stale file %s", path)
            check_fresh_start(out, resume, overwrite)
        if resume:
            check_resume_config(cfg, out, engine_solver_keys(cfg))
        yield


def default_setup(cfg, config_file: str = "", opts: list | None = None):
    """``OUTPUT_DIR`` created, the logger writing ``OUTPUT_DIR/log.txt``, the resolved config
    saved as ``OUTPUT_DIR/config.yaml`` (rank 0), detectron2's ``default_setup``. Returns the
    frozen ``cfg``."""
    os.makedirs(cfg.OUTPUT_DIR, exist_ok=True)
    setup_logger(cfg.OUTPUT_DIR)
    logger.info("Config %s with overrides %s:\n%s", config_file, list(opts or []), cfg.dump())
    if comm.is_main_process():
        with open(os.path.join(cfg.OUTPUT_DIR, "config.yaml"), "w") as f:
            f.write(cfg.dump())
    cfg.freeze()
    return cfg


def build_seeded_engine(cfg):
    """The engine of ``cfg``, built right after seeding with ``SEED + rank`` (each process its
    own augmentation and dropout randomness), so that a run starts from the same random state
    whatever ran before it in the process (a DG-Net run that first trained its teacher
    included)."""
    from .build import build_engine

    tr.utils.set_random_seed(cfg.SEED + comm.get_rank())
    return build_engine(cfg)


def launch_training(
    config_file: str,
    opts=None,
    resume: bool = False,
    overwrite: bool = False,
    stage: str | None = None,
):
    """Train the config ``config_file`` (+ ``KEY VALUE`` ``opts``): what
    ``tools/train_net.py`` runs. The config is read once; :func:`run_pipeline` does the
    rest."""
    cfg = load_cfg_file(config_file, list(opts or []), freeze=False)
    return run_pipeline(cfg, resume, overwrite, stage, source=config_file, opts=opts)


def run_pipeline(
    cfg,
    resume: bool = False,
    overwrite: bool = False,
    stage: str | None = None,
    source: str = "",
    opts=None,
):
    """The one pipeline runner. Prepare once (:func:`open_run`'s checks and lock,
    :func:`default_setup`, the method's ``before_training`` step), then the method's
    stages (:mod:`.stages`: derived configs, finished ones reused, interrupted ones
    continued, changed ones rerun with every later one), then the engine of ``cfg``
    (``--resume``: from the newest complete checkpoint). ``stage``: run only that stage
    (:data:`~.stages.MAIN_STAGE` = the engine's training alone). Returns the final
    evaluation (empty for a single earlier stage)."""
    from .device import resolve_device
    from .stages import MAIN_STAGE, StageContext, check_stage_name, run_stages

    method = method_of_engine(cfg.ENGINE.NAME)
    # the pipeline belongs to the method's main engine (the first); a stage's own run (e.g.
    # the translator's engine of the same method) has no stages of its own
    main = method.stages is not None and cfg.ENGINE.NAME == method.engines[0]
    stages = method.stages(cfg) if main else []
    if stage is not None:
        check_stage_name(stages, stage)
    # one earlier stage alone does not train this run: its checkpoints are not in the way
    earlier_stage_only = stage is not None and stage != MAIN_STAGE
    with open_run(cfg, resume or earlier_stage_only, overwrite, method.config_rules):
        default_setup(cfg, source, opts)
        if method.before_training is not None:
            method.before_training(cfg)
        if stages and stage != MAIN_STAGE:
            ctx = StageContext(cfg, source, list(opts or []), resolve_device(cfg.MODEL.DEVICE))
            ran = run_stages(stages, ctx, only=stage)
            if earlier_stage_only:
                return {}
            if ran and resume:
                logger.warning(
                    "a stage ran again before this --resume: the checkpoints of %s predate "
                    "it (start again with --overwrite to train on its new output)",
                    cfg.OUTPUT_DIR,
                )
        # after the stages: they may write the data this run reads (domain folders,
        # generated sets); each stage's own run scans its data before working
        scan_datasets(cfg)
        return _train(cfg, resume)


def run_training(cfg, resume: bool = True, overwrite: bool = False) -> dict:
    """Train ``cfg`` (a stage's derived config, or a config of its own such as DG-Net's
    teacher) in its ``OUTPUT_DIR``, without a pipeline: :func:`open_run`,
    :func:`default_setup`, the dataset scan, the engine. Resumes by default (an interrupted
    stage continues)."""
    cfg = cfg.clone()
    cfg.defrost()
    method = method_of_engine(cfg.ENGINE.NAME)
    with open_run(cfg, resume, overwrite, method.config_rules):
        default_setup(cfg, "(derived config)")
        if method.before_training is not None:
            method.before_training(cfg)
        scan_datasets(cfg)
        return _train(cfg, resume)


def _train(cfg, resume: bool) -> dict:
    engine = build_seeded_engine(cfg)
    engine.resume_or_load(resume=resume)
    return engine.train()
