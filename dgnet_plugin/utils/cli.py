"""The command-line tools' handling of user errors: a one-line message, exit status 2."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from ..config import ConfigError
from ..data.datasets import CorruptImageError, DatasetNotFoundError
from ..engine.base import NonFiniteLossError
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
    ModelZooError,
    RunLockedError,
    FileNotFoundError,
)

logger = logging.getLogger("dgnet_plugin")


def run_cli(main: Callable, args, extra_errors: tuple = ()) -> int:
    """``main(args)``; a user error is logged, printed to stderr as ``dgnet_plugin error
    (<type>): <message>`` and turned into exit status 2."""
    try:
        main(args)
    except USER_ERRORS + tuple(extra_errors) as e:
        logger.error("%s: %s", type(e).__name__, e)
        print(f"dgnet_plugin error ({type(e).__name__}): {e}", file=sys.stderr)
        return 2
    return 0
