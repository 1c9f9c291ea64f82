"""The command-line tools' handling of user errors: a one-line message, exit status 2; a run
stopped by a signal after saving: its message, exit status 128 + signal."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from ..config import ConfigError
from ..data.datasets import CorruptImageError, DatasetNotFoundError
from ..engine.base import NonFiniteLossError
from ..engine.divergence import LossDivergedError
from ..engine.signals import TrainingInterrupted
from ..model_zoo import ModelZooError
from ..modeling.backbones.build import PretrainedWeightsError
from .checkpoint import CheckpointError
from .run_lock import RunLockedError

#: Errors caused by input (config, data, weights, a diverged run), each with a message that
#: names the file or key and the fix; anything else is a bug and keeps its traceback.
USER_ERRORS = (
    ConfigError,
    DatasetNotFoundError,
    CorruptImageError,
    CheckpointError,
    PretrainedWeightsError,
    NonFiniteLossError,
    LossDivergedError,
    ModelZooError,
    RunLockedError,
    FileNotFoundError,
)

logger = logging.getLogger("dgnet_plugin")


def run_cli(main: Callable, args, extra_errors: tuple = ()) -> int:
    """``main(args)``; a user error is logged, printed to stderr as ``dgnet_plugin error
    (<type>): <message>`` and turned into exit status 2. :class:`TrainingInterrupted` (a
    signal, checkpoint saved) is logged and printed and turned into its ``exit_code``
    (128 + signal)."""
    try:
        main(args)
    except TrainingInterrupted as e:
        logger.warning("%s", e)
        print(f"dgnet_plugin: {e}", file=sys.stderr)
        return e.exit_code
    except USER_ERRORS + tuple(extra_errors) as e:
        logger.error("%s: %s", type(e).__name__, e)
        print(f"dgnet_plugin error ({type(e).__name__}): {e}", file=sys.stderr)
        return 2
    return 0
