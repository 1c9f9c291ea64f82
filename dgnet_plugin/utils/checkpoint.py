"""fvcore ``Checkpointer`` with atomic writes, strict model loading and RNG state."""

from __future__ import annotations

import os
import random
import tempfile

import numpy as np
import torch
from fvcore.common.checkpoint import Checkpointer as _FvCheckpointer

from ..errors import UserError


class CheckpointError(UserError, RuntimeError):
    """A checkpoint is missing, unreadable or does not fit the model."""


def atomic_torch_save(obj, path: str) -> None:
    """``torch.save`` to a temp file in the same folder, fsync, then ``os.replace``.

    A crash or a full disk leaves either the old file or the new one, never half of one.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".pth", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


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


class Checkpointer(_FvCheckpointer):
    """fvcore's checkpointer (``last_checkpoint`` file, ``resume_or_load``, checkpointables)
    with three changes: files are written atomically (temp file + rename), loading a model
    raises :class:`CheckpointError` when the checkpoint lacks any of its weights (fvcore only
    logs), a missing file is a clear error naming the path, and ``load`` also takes
    ``zoo://NAME`` and URLs (see :mod:`dgnet_plugin.model_zoo`).
    """

    def save(self, name: str, **kwargs) -> str:
        data = {"model": self.model.state_dict()}
        for key, obj in self.checkpointables.items():
            data[key] = obj.state_dict()
        data.update(kwargs)
        path = os.path.join(self.save_dir, f"{name}.pth")
        atomic_torch_save(data, path)
        self.tag_last_checkpoint(f"{name}.pth")
        self.logger.info("Saved checkpoint %s", path)
        return path

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
        try:
            return super().load(path, checkpointables=checkpointables)
        except CheckpointError:
            raise
        except Exception as e:
            raise CheckpointError(
                f"cannot read checkpoint '{path}': {type(e).__name__}: {e}"
            ) from e

    def _load_file(self, f: str) -> dict:
        data = torch.load(f, map_location="cpu", weights_only=True)
        if not isinstance(data, dict) or "model" not in data:
            raise CheckpointError(f"'{f}' is not a dgnet_plugin checkpoint (no 'model' entry)")
        return data

    def _log_incompatible_keys(self, incompatible) -> None:
        # fvcore drops wrong-shape weights before loading, so they are also 'missing':
        # report the shape first, it says why.
        if incompatible.incorrect_shapes:
            k, shape_ckpt, shape_model = incompatible.incorrect_shapes[0]
            raise CheckpointError(
                f"checkpoint weight '{k}' has shape {shape_ckpt} but the model has {shape_model} "
                "(different number of identities, backbone or image size?)"
            )
        if incompatible.missing_keys:
            shown = ", ".join(incompatible.missing_keys[:5])
            raise CheckpointError(
                f"the checkpoint lacks {len(incompatible.missing_keys)} weights of the model "
                f"(e.g. {shown}); was it written for another MODEL.META_ARCHITECTURE or backbone?"
            )
        super()._log_incompatible_keys(incompatible)
