"""The command-line tools' handling of user errors: a one-line message, exit status 2; a run
stopped by a signal after saving: its message, exit status 128 + signal."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from ..errors import TrainingInterrupted, UserError

#: Errors caused by input (config, data, weights, a diverged run, a locked OUTPUT_DIR), each
#: with a message that names the file or key and the fix (every
#: :class:`~dgnet_plugin.errors.UserError`, and a missing file); anything else is a bug and
#: keeps its traceback.
USER_ERRORS = (UserError, FileNotFoundError)

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
