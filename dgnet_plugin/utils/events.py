"""Logging to console + ``log.txt``, detectron2-style ``metrics.json`` (JSON lines) and
progress bars."""

from __future__ import annotations

import json
import logging
import os
import sys


class _StdoutHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stdout`` is at emit time (it may be replaced, e.g. by pytest)."""

    def emit(self, record):
        self.stream = sys.stdout
        super().emit(record)


def setup_logger(output_dir: str | None, name: str = "dgnet_plugin") -> logging.Logger:
    """Console (INFO) and ``output_dir/log.txt`` handlers on the package logger (idempotent).

    In a process of rank > 0 (several processes) only warnings and errors reach the console,
    tagged with the rank, and nothing is written to ``log.txt``."""
    from .comm import get_rank  # lazy: keeps this module free of torch at import

    rank = get_rank()
    logger = logging.getLogger(name)
    logger.setLevel(logging.INFO if rank == 0 else logging.WARNING)
    logger.propagate = False
    tag = "" if rank == 0 else f" rank {rank}"
    fmt = logging.Formatter(f"[%(asctime)s %(name)s{tag}] %(message)s", "%m/%d %H:%M:%S")
    for h in list(logger.handlers):
        logger.removeHandler(h)
        h.close()
    console = _StdoutHandler(sys.stdout)
    console.setFormatter(fmt)
    logger.addHandler(console)
    if output_dir and rank == 0:
        os.makedirs(output_dir, exist_ok=True)
        fh = logging.FileHandler(os.path.join(output_dir, "log.txt"))
        fh.setFormatter(fmt)
        logger.addHandler(fh)
    return logger


#: Seconds between two refreshes of a progress bar whose stream is not a terminal.
NON_TTY_MININTERVAL = 30.0


def progress_bar(*args, **kwargs):
    """``tqdm(*args, **kwargs)`` that stays short in log files: when its stream (``file``,
    default ``sys.stderr``) is not a terminal (redirected to a file, CI), it refreshes at most
    every :data:`NON_TTY_MININTERVAL` seconds instead of ten times a second, so a redirected
    log gets a bar line every 30 s (and the last one), not one per iteration. An explicit
    ``mininterval`` wins."""
    from tqdm import tqdm

    stream = kwargs.get("file") or sys.stderr
    isatty = getattr(stream, "isatty", None)
    if not (isatty and isatty()):
        kwargs.setdefault("mininterval", NON_TTY_MININTERVAL)
    return tqdm(*args, **kwargs)


class JSONWriter:
    """Appends one JSON object per line to ``path`` (``metrics.json``)."""

    def __init__(self, path: str):
        self.path = path

    def write(self, record: dict) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")


def read_json_lines(path: str) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def drop_records_after(path: str, iteration: int) -> int:
    """Remove from the JSON-lines file ``path`` the records of iterations after
    ``iteration`` (written after the checkpoint a run resumes from), so that a resumed run
    writes no iteration twice. The file is rewritten atomically; returns how many records
    were dropped (0, and nothing written, when none or no file)."""
    if not os.path.isfile(path):
        return 0
    with open(path) as f:
        lines = [line for line in f if line.strip()]
    keep = [line for line in lines if json.loads(line).get("iteration", 0) <= iteration]
    if len(keep) == len(lines):
        return 0
    from .checkpoint import atomic_write_text

    atomic_write_text("".join(keep), path)
    return len(lines) - len(keep)
