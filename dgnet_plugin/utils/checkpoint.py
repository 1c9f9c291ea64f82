"""fvcore ``Checkpointer`` with atomic writes, strict model loading and RNG state, and the
checkpoint hygiene of a run's folder: newest complete checkpoint, stale temp files, keeping
the last N, finite-state checks and clear save failures."""

from __future__ import annotations

import glob
import logging
import math
import os
import random
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from fvcore.common.checkpoint import Checkpointer as _FvCheckpointer

from ..errors import UserError, describe_load_error

logger = logging.getLogger("dgnet_plugin")

#: Periodic checkpoints ``model_<7-digit iteration>.pth`` (the ones :func:`prune_checkpoints`
#: may delete); ``model_final.pth`` is never pruned.
PERIODIC_NAME = re.compile(r"^model_(\d{7})\.pth$")
TEMP_PREFIX = ".tmp-"


class CheckpointError(UserError, RuntimeError):
    """A checkpoint is missing, unreadable or does not fit the model."""


class CheckpointSaveError(CheckpointError):
    """A checkpoint could not be written (full disk, permissions); the previous one is intact."""


class NonFiniteStateError(CheckpointError):
    """The state to save holds NaN/Inf; nothing was written."""


def atomic_torch_save(obj, path: str) -> None:
    """``torch.save`` to a temp file in the same folder, fsync, then ``os.replace``.

    A crash or a full disk leaves either the old file or the new one, never half of one.

    Raises:
        OSError: the write failed (e.g. ``ENOSPC``). torch's zip writer reports a full disk
            as a ``RuntimeError`` ("unexpected pos ...") raised while handling the
            ``OSError``; the ``OSError`` is what is raised here.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".pth", dir=folder)
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)
        cause = _os_error_in_chain(e)
        if cause is not None and cause is not e:
            raise cause from None
        raise


def _os_error_in_chain(e: BaseException | None) -> OSError | None:
    """The first ``OSError`` among ``e`` and the exceptions it was raised from or while."""
    seen = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, OSError):
            return e
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return None


def atomic_write_text(text: str, path: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def rng_state() -> dict:
    """Python, NumPy, torch (and CUDA) RNG states as plain types / tensors, so the checkpoint
    loads with ``torch.load(weights_only=True)``."""
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": (np_state[0], torch.from_numpy(np_state[1].copy()), *map(float, np_state[2:])),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(_to_tuple(state["python"]))
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), int(pos), int(has_gauss), gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _to_tuple(x):
    return tuple(_to_tuple(v) for v in x) if isinstance(x, list | tuple) else x


# ---------------------------------------------------------------------------- folder hygiene
@dataclass(frozen=True)
class CheckpointInfo:
    """A checkpoint file that loads, and the ``iteration`` stored in it."""

    path: str
    iteration: int


def read_checkpoint_iteration(path: str) -> int:
    """The ``iteration`` entry of checkpoint ``path``, read without loading its tensors
    (``torch.load(mmap=True)``: only the zip directory at the end of the file is parsed, so a
    truncated file fails here).

    Raises:
        CheckpointError: the file cannot be opened, is truncated, is not a dict with
            ``model`` and an integer ``iteration``; the message names the file and the reason.
    """
    try:
        data = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:
        raise CheckpointError(
            f"cannot read checkpoint '{path}' ({describe_load_error(e)})"
        ) from None
    if not isinstance(data, dict) or "model" not in data:
        raise CheckpointError(f"'{path}' is not a dgnet_plugin checkpoint (no 'model' entry)")
    it = data.get("iteration")
    if isinstance(it, torch.Tensor) and it.numel() == 1:
        it = int(it.item())
    if not isinstance(it, int) or isinstance(it, bool):
        raise CheckpointError(f"checkpoint '{path}' has no integer 'iteration' entry")
    return it


def newest_complete_checkpoint(folder: str) -> CheckpointInfo | None:
    """The checkpoint of ``folder`` with the highest stored iteration among the ``*.pth``
    files that load (``model_final.pth`` included; temp files excluded), whatever
    ``last_checkpoint`` says: it may lag (a crash between the rename of the checkpoint and the
    update of ``last_checkpoint``) or name a file that is gone or truncated. On a tie the most
    recently modified file wins. Files that do not load are skipped with a warning naming them.

    Returns ``None`` when no file qualifies (a fresh folder). Use it for ``--resume`` in
    place of ``Checkpointer.get_checkpoint_file()``.
    """
    best: tuple[int, float, str] | None = None
    for path in glob.glob(os.path.join(folder, "*.pth")):
        if os.path.basename(path).startswith(TEMP_PREFIX) or not os.path.isfile(path):
            continue
        try:
            it = read_checkpoint_iteration(path)
        except CheckpointError as e:
            logger.warning("skipping %s", e)
            continue
        key = (it, os.path.getmtime(path), path)
        if best is None or key > best:
            best = key
    if best is None:
        return None
    tagged = _tagged_checkpoint(folder)
    if tagged and os.path.abspath(tagged) != os.path.abspath(best[2]):
        logger.warning(
            "last_checkpoint names %s but the newest complete checkpoint is %s (iteration %d); "
            "using the latter",
            tagged,
            best[2],
            best[0],
        )
    return CheckpointInfo(best[2], best[0])


def _tagged_checkpoint(folder: str) -> str | None:
    """The file ``folder/last_checkpoint`` names, or ``None``."""
    try:
        with open(os.path.join(folder, "last_checkpoint")) as f:
            name = f.read().strip()
    except OSError:
        return None
    return os.path.join(folder, name) if name else None


def remove_stale_files(folder: str) -> list[str]:
    """Delete what interrupted saves leave in ``folder``: temp files ``.tmp-*`` (of
    :func:`atomic_torch_save` / :func:`atomic_write_text`) and 0-byte ``*.pth`` files. Each
    removal is logged; returns the removed paths.

    Call it at the start of a run, after taking the folder's :class:`~.run_lock.RunLock`
    (another live run's temp files are not stale).
    """
    removed = []
    candidates = glob.glob(os.path.join(folder, TEMP_PREFIX + "*"))
    candidates += [p for p in glob.glob(os.path.join(folder, "*.pth")) if _empty_file(p)]
    for path in sorted(set(candidates)):
        if not os.path.isfile(path):
            continue
        try:
            os.remove(path)
        except FileNotFoundError:
            continue
        logger.warning("removed %s left by an interrupted save", path)
        removed.append(path)
    return removed


def _empty_file(path: str) -> bool:
    try:
        return os.path.isfile(path) and os.path.getsize(path) == 0
    except OSError:
        return False


def periodic_checkpoints(folder: str) -> list[str]:
    """``model_<iteration>.pth`` files of ``folder``, oldest (lowest iteration) first."""
    names = (
        [n for n in os.listdir(folder) if PERIODIC_NAME.match(n)] if os.path.isdir(folder) else []
    )
    return [os.path.join(folder, n) for n in sorted(names)]


def prune_checkpoints(folder: str, keep: int | None) -> list[str]:
    """Keep the ``keep`` newest periodic checkpoints ``model_<iteration>.pth`` of ``folder``
    and delete the older ones (detectron2's ``max_to_keep``). ``model_final.pth``, other
    names and the file ``last_checkpoint`` names are never deleted. ``keep`` of ``None`` or
    0 keeps everything. Returns the deleted paths (each logged).

    Raises:
        ValueError: ``keep`` is negative.
    """
    if not keep:
        return []
    if keep < 0:
        raise ValueError(f"keep must be >= 0 (0 = keep all), got {keep}")
    tagged = _tagged_checkpoint(folder)
    protected = {os.path.abspath(tagged)} if tagged else set()
    removed = []
    for path in periodic_checkpoints(folder)[:-keep]:
        if os.path.abspath(path) in protected:
            continue
        try:
            os.remove(path)
        except FileNotFoundError:
            continue
        logger.info("removed old checkpoint %s (keeping the last %d)", path, keep)
        removed.append(path)
    return removed


def check_fresh_start(folder: str, resume: bool, overwrite: bool = False) -> None:
    """Refuse to start a run from scratch in a folder that already holds checkpoints (the
    ``model_<iteration>.pth`` / ``model_final.pth`` files and ``last_checkpoint`` this
    checkpointer writes; other files do not count).

    With ``resume`` nothing is checked. With ``overwrite`` those files are deleted (logged),
    so the new run's checkpoints never mix with the old run's; everything else stays.

    Raises:
        CheckpointError: ``folder`` has checkpoints and neither ``resume`` nor ``overwrite``.
    """
    if resume or not os.path.isdir(folder):
        return
    found = periodic_checkpoints(folder)
    final = os.path.join(folder, "model_final.pth")
    found += [final] if os.path.isfile(final) else []
    tag = os.path.join(folder, "last_checkpoint")
    if not found and not os.path.isfile(tag):
        return
    if not overwrite:
        shown = ", ".join(os.path.basename(p) for p in found[-3:]) or "last_checkpoint"
        raise CheckpointError(
            f"OUTPUT_DIR '{folder}' already holds checkpoints ({shown}"
            f"{', ...' if len(found) > 3 else ''}); pass --resume to continue that run, "
            "ask to overwrite it, or choose another OUTPUT_DIR"
        )
    for path in [*found, tag]:
        if os.path.isfile(path):
            os.remove(path)
    logger.warning("overwriting: removed %d old checkpoint(s) from %s", len(found), folder)


# ---------------------------------------------------------------------------- finite state
def first_non_finite(state, prefix: str = "") -> str | None:
    """The key (dotted path) of the first entry of ``state`` holding NaN/Inf, or ``None``.

    ``state`` is a tensor, a float, a ``Mapping`` / list / tuple of those (a state dict, an
    optimiser's or a ``GradScaler``'s ``state_dict()``), or any object with ``state_dict()``
    (a module, an optimiser, a ``GradScaler``). Only floating-point (and complex) tensors and
    Python floats are checked; integers are always finite. The check reads the device once
    per device, not once per tensor.
    """
    entries: list[tuple[str, object]] = []
    _collect(state, prefix, entries)
    by_device: dict[torch.device, list[tuple[str, torch.Tensor]]] = {}
    for key, value in entries:
        if isinstance(value, float):
            if not math.isfinite(value):
                return key
        else:
            by_device.setdefault(value.device, []).append((key, value))
    bad = []
    for group in by_device.values():
        flags = torch.stack([torch.isfinite(t).all() for _, t in group]).cpu().tolist()
        bad += [i for i, ok in zip((k for k, _ in group), flags) if not ok]
    if not bad:
        return None
    order = {k: i for i, (k, _) in enumerate(entries)}
    return min(bad, key=order.__getitem__)


def _collect(state, prefix: str, out: list) -> None:
    if isinstance(state, torch.Tensor):
        if (state.is_floating_point() or state.is_complex()) and state.numel() > 0:
            out.append((prefix, state.detach()))
    elif isinstance(state, float):
        out.append((prefix, state))
    elif isinstance(state, Mapping):
        for k, v in state.items():
            _collect(v, f"{prefix}.{k}" if prefix else str(k), out)
    elif isinstance(state, list | tuple):
        for i, v in enumerate(state):
            _collect(v, f"{prefix}.{i}" if prefix else str(i), out)
    elif hasattr(state, "state_dict") and callable(state.state_dict):
        _collect(state.state_dict(), prefix, out)


# ---------------------------------------------------------------------------- messages
def format_size(num_bytes: int) -> str:
    """``12.3 MB`` (decimal units, as ``ls -h --si`` and file managers print)."""
    size = float(num_bytes)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def save_failure_message(path: str, error: BaseException, previous: str | None) -> str:
    """``cannot write <path>: <reason>; <previous> is intact`` (one line)."""
    reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
    if previous:
        tail = f"{previous} is intact; free space or fix permissions, then --resume"
    else:
        tail = "no earlier checkpoint exists; free space or fix permissions and restart"
    return f"cannot write {path}: {reason}; {tail}"


class Checkpointer(_FvCheckpointer):
    """fvcore's checkpointer (``last_checkpoint`` file, ``resume_or_load``, checkpointables)
    with these changes: files are written atomically (temp file + rename), loading a model
    raises :class:`CheckpointError` when the checkpoint lacks any of its weights (fvcore only
    logs), a missing file is a clear error naming the path, and ``load`` also takes
    ``zoo://NAME`` and URLs (see :mod:`dgnet_plugin.model_zoo`). :meth:`save` refuses
    non-finite state, logs the file size, names the intact previous checkpoint when the
    write fails, and keeps the last ``max_to_keep`` periodic checkpoints.

    Args:
        max_to_keep: keep this many ``model_<iteration>.pth`` files after each save (older
            ones deleted, see :func:`prune_checkpoints`); ``None`` or 0 keeps all.
    """

    def __init__(self, model, save_dir: str = "", *, max_to_keep: int | None = None, **kw):
        super().__init__(model, save_dir, **kw)
        self.max_to_keep = max_to_keep

    def save(self, name: str, **kwargs) -> str:
        """Write ``save_dir/<name>.pth`` (model, checkpointables, ``kwargs``) atomically, point
        ``last_checkpoint`` at it, log its size, then prune to ``max_to_keep``.

        Raises:
            NonFiniteStateError: a weight, optimiser or scaler entry holds NaN/Inf; nothing is
                written, the message names the entry and the last (finite) checkpoint.
            CheckpointSaveError: the file could not be written; the previous one is intact.
        """
        data = {"model": self.model.state_dict()}
        for key, obj in self.checkpointables.items():
            data[key] = obj.state_dict()
        data.update(kwargs)
        path = os.path.join(self.save_dir, f"{name}.pth")
        bad = first_non_finite(data)
        if bad is not None:
            previous = self._previous_checkpoint()
            raise NonFiniteStateError(
                f"not saving {path}: '{bad}' holds NaN/Inf; the last checkpoint with finite "
                f"weights is {previous or 'none (nothing saved yet)'}. Lower the learning "
                "rates or check the data, then --resume"
            )
        target = path
        try:
            atomic_torch_save(data, path)
            target = os.path.join(self.save_dir, "last_checkpoint")
            self.tag_last_checkpoint(f"{name}.pth")
        except OSError as e:
            previous = self._previous_checkpoint()
            raise CheckpointSaveError(save_failure_message(target, e, previous)) from e
        logger.info("Saved checkpoint %s (%s)", path, format_size(os.path.getsize(path)))
        prune_checkpoints(self.save_dir, self.max_to_keep)
        return path

    def _previous_checkpoint(self) -> str | None:
        info = newest_complete_checkpoint(self.save_dir)
        return info.path if info else None

    def tag_last_checkpoint(self, last_filename_basename: str) -> None:
        atomic_write_text(last_filename_basename, os.path.join(self.save_dir, "last_checkpoint"))

    def load(self, path: str, checkpointables=None) -> dict:
        """Load ``path``: a local file, ``zoo://NAME``, an ``http(s)://`` URL or a Google
        Drive id/link (downloaded and verified by :func:`dgnet_plugin.model_zoo.resolve_weights`).
        Returns the checkpoint's extra entries (e.g. ``iteration``).

        Raises:
            CheckpointError: empty path, missing local file, failed download or hash check,
                unreadable file, or weights that do not fit the model.
        """
        if not path:
            raise CheckpointError("no checkpoint path given (MODEL.WEIGHTS is empty)")
        from ..model_zoo import ModelZooError, resolve_weights  # lazy: avoids import cycles

        missing = CheckpointError(
            f"checkpoint '{path}' does not exist; set MODEL.WEIGHTS to a .pth written by "
            "tools/train_net.py (OUTPUT_DIR/model_final.pth), zoo://NAME (MODEL_ZOO.md) or a URL"
        )
        try:
            path = resolve_weights(path)
        except ModelZooError as e:
            raise CheckpointError(str(e)) from e
        except FileNotFoundError as e:
            raise missing from e
        if not os.path.isfile(path):
            raise missing
        self._loading = path  # named by the messages of _log_incompatible_keys
        try:
            return super().load(path, checkpointables=checkpointables)
        except CheckpointError:
            raise
        except Exception as e:
            raise CheckpointError(
                f"cannot read checkpoint '{path}': {describe_load_error(e)}"
            ) from e

    def _load_file(self, f: str) -> dict:
        data = torch.load(f, map_location="cpu", weights_only=True)
        if not isinstance(data, dict) or "model" not in data:
            raise CheckpointError(f"'{f}' is not a dgnet_plugin checkpoint (no 'model' entry)")
        return data

    def _log_incompatible_keys(self, incompatible) -> None:
        # fvcore drops wrong-shape weights before loading, so they are also 'missing':
        # report the shape first, it says why.
        path = getattr(self, "_loading", "")
        if incompatible.incorrect_shapes:
            k, shape_ckpt, shape_model = incompatible.incorrect_shapes[0]
            reshaped = {key for key, *_ in incompatible.incorrect_shapes}
            lacking = [key for key in incompatible.missing_keys if key not in reshaped]
            also = (
                f"; it also lacks {len(lacking)} weights of the model (e.g. {lacking[0]})"
                if lacking
                else ""
            )
            raise CheckpointError(
                f"checkpoint '{path}' does not fit the model: its weight '{k}' has shape "
                f"{shape_ckpt} but the model has {shape_model}{also} (different number of "
                "identities, backbone, embedding size or image size than the config it was "
                "trained with?)"
            )
        if incompatible.missing_keys:
            shown = ", ".join(incompatible.missing_keys[:5])
            raise CheckpointError(
                f"checkpoint '{path}' does not fit the model: it lacks "
                f"{len(incompatible.missing_keys)} weights of the model (e.g. {shown}); was it "
                "written for another MODEL.META_ARCHITECTURE or backbone?"
            )
        super()._log_incompatible_keys(incompatible)
