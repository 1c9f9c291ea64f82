"""The command-line tools' handling of user errors: a one-line message, exit status 2."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from ..errors import UserError

#: Errors caused by input (config, data, weights, a diverged run), each with a message that
#: names the file or key and the fix (every :class:`~dgnet_plugin.errors.UserError`, and a
#: missing file); anything else is a bug and keeps its traceback.
USER_ERRORS = (UserError, FileNotFoundError)

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
