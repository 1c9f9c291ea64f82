"""The package's user errors: the bottom layer every other module may import.

A :class:`UserError` is caused by input (config, data, weights, a diverged run) and carries a
message naming the file, key or value and the fix; the command-line tools print it in one
line and exit with status 2 (:func:`dgnet_plugin.utils.cli.run_cli`). Anything else is a bug
and keeps its traceback. Each concrete error also derives from the built-in exception a
caller would expect (``ValueError``, ``FileNotFoundError``, ...).
"""

from __future__ import annotations


class UserError(Exception):
    """Base of the errors caused by the user's input (exit status 2 in the tools)."""


class ConfigError(UserError, ValueError):
    """A config file or override could not be merged or is invalid (unknown key, bad value,
    missing file)."""
