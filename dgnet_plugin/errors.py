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


def signal_name(signum: int) -> str:
    """``"SIGTERM"`` for 15, ``"signal N"`` for a number without a name."""
    import signal

    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class TrainingInterrupted(Exception):
    """Training stopped on a signal after saving; ``exit_code`` is ``128 + signum`` (the
    tools exit with it, as a shell does for a process killed by that signal).

    Args:
        signum: the signal that asked to stop.
        iteration: the last completed iteration (the one the checkpoint holds).
        checkpoint: the path of the checkpoint written on the way out (``None``: nothing
            saved, e.g. on ranks other than 0).
    """

    def __init__(self, signum: int, iteration: int | None = None, checkpoint: str | None = None):
        self.signum = int(signum)
        self.exit_code = 128 + self.signum
        self.iteration = iteration
        self.checkpoint = checkpoint
        where = f" at iteration {iteration}" if iteration is not None else ""
        saved = f", saved {checkpoint}; continue with --resume" if checkpoint else ""
        super().__init__(f"interrupted by {signal_name(signum)}{where}{saved}")


def describe_load_error(e: BaseException) -> str:
    """A one-line account of why ``torch.load`` failed (its messages run over many lines):
    the exception type and its first line, e.g. ``UnpicklingError: Weights only load failed``
    for a text file or a pickle of arbitrary objects (refused: it could run code)."""
    first = (str(e).strip().splitlines() or [""])[0].split(". ")[0].rstrip(".")
    return f"{type(e).__name__}: {first}" if first else type(e).__name__
