"""Checkpoints between ``tools/train_net.py`` and the torchreid engines.

The two write the same networks under the same parameter names, split differently:

- ``tools/train_net.py``: one ``OUTPUT_DIR/model_XXXXXXX.pth`` / ``model_final.pth`` whose
  ``model`` entry is the meta-architecture's state dict (DG-Net: ``reid.*``, ``gen.*``,
  ``dis.*``), with ``config.yaml`` beside it;
- a torchreid engine: torchreid's ``save_dir/<name>/model.pth.tar-<epoch>`` per registered
  network (``state_dict`` of that network alone, ``epoch``, ``rank1``, ``optimizer``,
  ``scheduler``).

:func:`cli_to_torchreid` and :func:`torchreid_to_cli` convert the weights (optimiser states
are not converted: the two schedules count differently). A meta-architecture built by
``build_dgnet`` / ``build_d2rl`` from the run's config also loads a CLI checkpoint directly
(:func:`load_cli_weights`, same keys).
"""

from __future__ import annotations

import os

from torch import nn

from ..engine.loading import read_state_dict
from ..utils import torchreid_compat as tr
from ..utils.checkpoint import atomic_torch_save, atomic_write_text

#: torchreid name of each DG-Net network -> its prefix in the CLI's ``model`` state dict
DGNET_NETWORKS = {"model": "reid", "gen": "gen", "dis": "dis"}
#: the engines that register the whole meta-architecture as ``model`` (D2RL: T_I and T_F; the
#: re-ID network of the generate-then-train methods): the prefix "" is the whole state dict
WHOLE_MODEL = {"model": ""}


def load_cli_weights(model: nn.Module, path: str) -> None:
    """Load the ``model`` entry of a ``tools/train_net.py`` checkpoint into ``model`` (the
    meta-architecture built from the same config), strictly.

    Raises:
        CheckpointError: unreadable, or not a checkpoint of ``tools/train_net.py``.
        RuntimeError: the keys or shapes differ (another config or identity count).
    """
    model.load_state_dict(read_state_dict(path))


def cli_to_torchreid(
    path: str, save_dir: str, epoch: int = 0, networks: dict[str, str] | None = None
) -> dict[str, str]:
    """Write the networks of the CLI checkpoint ``path`` as torchreid files
    ``save_dir/<name>/model.pth.tar-<epoch>`` (``networks``: torchreid name -> prefix in
    the CLI state dict, default :data:`DGNET_NETWORKS`). Each file holds ``state_dict``,
    ``epoch``, ``rank1`` (0.0), ``optimizer`` and ``scheduler`` (``None``), so
    ``torchreid.utils.load_pretrained_weights`` and ``FeatureExtractor(model_path=...)``
    load it (``save_dir/model/...`` is Ea, a ``dgnet_r50`` / ``dgnet_mobilenetv2``).
    Returns ``{name: file}``.

    Raises:
        CheckpointError: ``path`` is not a checkpoint of ``tools/train_net.py``.
        KeyError: a prefix of ``networks`` is not in the checkpoint.
    """
    state = read_state_dict(path)
    out = {}
    for name, prefix in (networks or DGNET_NETWORKS).items():
        if prefix:
            sub = {k[len(prefix) + 1 :]: v for k, v in state.items() if k.startswith(prefix + ".")}
        else:
            sub = dict(state)
        if not sub:
            raise KeyError(f"'{path}' has no '{prefix}.*' weights")
        folder = os.path.join(save_dir, name)
        os.makedirs(folder, exist_ok=True)
        out[name] = os.path.join(folder, f"model.pth.tar-{epoch}")
        record = {"state_dict": sub, "epoch": epoch, "rank1": 0.0}
        atomic_torch_save({**record, "optimizer": None, "scheduler": None}, out[name])
    return out


def torchreid_to_cli(
    files: dict[str, str], output: str, cfg=None, networks: dict[str, str] | None = None
) -> str:
    """Write the torchreid files ``files`` (``{name: save_dir/<name>/model.pth.tar-N}``,
    names as :data:`DGNET_NETWORKS`, or ``networks``) as one ``tools/train_net.py``
    checkpoint ``output`` (``{"model": state dict, "iteration": 0}``) that
    ``tools/train_net.py --eval-only MODEL.WEIGHTS <output>`` evaluates; with ``cfg`` (the
    model's config, ``model.cfg``) its ``config.yaml`` is written beside it. Returns
    ``output``.

    Raises:
        KeyError: a network of ``networks`` has no file in ``files``.
    """
    state = {}
    for name, prefix in (networks or DGNET_NETWORKS).items():
        ckpt = tr.utils.load_checkpoint(files[name])
        sub = ckpt.get("state_dict", ckpt)
        lead = f"{prefix}." if prefix else ""
        state.update({lead + k.removeprefix("module."): v for k, v in sub.items()})
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    atomic_torch_save({"model": state, "iteration": 0}, output)
    if cfg is not None:
        atomic_write_text(cfg.dump(), os.path.join(os.path.dirname(output), "config.yaml"))
    return output


def torchreid_files(save_dir: str, epoch: int, names=tuple(DGNET_NETWORKS)) -> dict[str, str]:
    """``{name: save_dir/<name>/model.pth.tar-<epoch>}`` of a torchreid engine's run."""
    return {n: os.path.join(save_dir, n, f"model.pth.tar-{epoch}") for n in names}


__all__ = [
    "DGNET_NETWORKS",
    "WHOLE_MODEL",
    "cli_to_torchreid",
    "load_cli_weights",
    "torchreid_files",
    "torchreid_to_cli",
]
