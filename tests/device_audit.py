"""The device audit's recorder (used by ``test_device_audit.py``; see its docstring).

:class:`CpuLeakAudit` is a ``TorchDispatchMode``: every aten op of the block passes through
it. With the engine's device set to ``meta`` (a device with shapes and dtypes but no data:
forward, backward and optimiser steps run, and an op that mixes a ``meta`` tensor with a CPU
tensor raises, as a CPU/CUDA mix raises on a GPU), an op whose output lands on the CPU is a
finding: *moved* when one of its inputs was on ``meta`` (``.cpu()``, ``.to("cpu")``), *created*
otherwise (``torch.tensor(...)``, ``torch.zeros(...)`` without ``device=``), each with the
package's frame that caused it. Host reads of a device value (``.item()``, ``bool(t)``,
``.tolist()``, data-dependent shapes: ``nonzero``, boolean masks) cannot run on ``meta``: the
audit answers them with a stand-in (1 / all-true / every index) and records them as
*syncs* (on CUDA each one waits for the GPU). An op on host tensors that are not scalars
(stacking decoded images, seeded host noise) is host data processing, not a creation; a
``.cpu()`` of a ``meta`` tensor is recorded and answered with a zero host tensor.

Data loading (the ``DataLoader`` iterators, the package's ``data`` modules, torchvision's
transforms) is not audited. CPU scalars that torch's
own non-fused optimisers keep (``state["step"]``; ``meta`` has no fused optimiser, CUDA does)
are not findings.
"""

from __future__ import annotations

import contextlib
import traceback

import torch
from conftest import import_benchmark
from torch.utils._python_dispatch import TorchDispatchMode, _disable_current_modes
from torch.utils._pytree import tree_flatten

meta_autocast = import_benchmark("meta_device").meta_autocast

META = torch.device("meta")
aten = torch.ops.aten
_SCALAR_READS = {aten._local_scalar_dense.default}
_DATA_DEPENDENT = {aten.nonzero.default}
_SKIP_FRAMES = ("torch/", "device_audit.py", "contextlib.py")


def _origin() -> str:
    """The innermost frame of the package (else of the caller) that led to the current op."""
    frames = traceback.extract_stack()
    for f in reversed(frames):
        if "dgnet_plugin" in f.filename and "/tests/" not in f.filename:
            return f"{f.filename.split('dgnet_plugin/')[-1]}:{f.lineno} {f.line}"
    for f in reversed(frames):
        if not any(s in f.filename for s in _SKIP_FRAMES):
            return f"{f.filename}:{f.lineno} {f.line}"
    return "?"


def _is_cpu(device) -> bool:
    return device is not None and torch.device(device).type == "cpu"


def _in_data_loading() -> bool:
    """Whether the current op comes from the package's data modules (datasets, samplers,
    transforms, providers: host work by design) or torchvision's transforms."""
    for f in traceback.extract_stack():
        if "dgnet_plugin/data/" in f.filename or "torchvision/transforms" in f.filename:
            return True
    return False


class CpuLeakAudit(TorchDispatchMode):
    """Records CPU outputs and host reads of ``meta`` tensors (see the module docstring).

    Attributes: ``moved``, ``created``, ``syncs``: lists of ``"op at origin"`` strings;
    ``ops``: how many aten ops ran on ``meta``.
    """

    def __init__(self):
        super().__init__()
        self.moved: list[str] = []
        self.created: list[str] = []
        self.syncs: list[str] = []
        self.ops = 0
        self.in_optimizer_step = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        inputs = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        on_meta = any(t.device.type == "meta" for t in inputs)
        if on_meta and func in _SCALAR_READS:
            self.syncs.append(f"{func} at {_origin()}")
            x = inputs[0]
            return True if x.dtype == torch.bool else (1.0 if x.is_floating_point() else 1)
        if on_meta and func in _DATA_DEPENDENT:
            self.syncs.append(f"{func} at {_origin()}")
            x = inputs[0]
            return torch.empty((x.numel(), x.dim()), dtype=torch.long, device=META)
        if on_meta and func is aten.bincount.default:  # no meta kernel: minlength bins
            self.syncs.append(f"{func} at {_origin()}")
            x, weights = args[0], (args[1] if len(args) > 1 else kwargs.get("weights"))
            n = max(int(args[2] if len(args) > 2 else kwargs.get("minlength", 0)), 1)
            dtype = weights.dtype if weights is not None else torch.long
            return torch.zeros(n, dtype=dtype, device=META)
        if on_meta and func is aten._to_copy.default and _is_cpu(kwargs.get("device")):
            # .cpu() / .to("cpu"): meta has no data to copy; a zero host tensor stands in
            self.moved.append(f"{func} at {_origin()}")
            x = args[0]
            return torch.zeros(x.shape, dtype=kwargs.get("dtype") or x.dtype)
        out = func(*args, **kwargs)
        if on_meta:
            self.ops += 1
        elif any(t.device.type == "cpu" and t.dim() for t in inputs):
            return out  # host data processing (images, lists of features): not a creation
        outs = [t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)]
        if any(t.device.type == "cpu" for t in outs) and not _in_data_loading():
            if on_meta:
                self.moved.append(f"{func} at {_origin()}")
            elif not (self.in_optimizer_step and all(t.dim() == 0 for t in outs)):
                self.created.append(f"{func} at {_origin()}")
        return out

    def findings(self) -> list[str]:
        return [f"moved to CPU: {m}" for m in self.moved] + [
            f"created on CPU: {c}" for c in self.created
        ]


def _outside(method):
    def wrapped(*args, **kwargs):
        with _disable_current_modes():
            return method(*args, **kwargs)

    return wrapped


@contextlib.contextmanager
def audit():
    """``with audit() as a:`` the block under :class:`CpuLeakAudit`, data loading outside."""
    from torch.optim.optimizer import (
        register_optimizer_step_post_hook,
        register_optimizer_step_pre_hook,
    )
    from torch.utils.data import dataloader

    base = dataloader._BaseDataLoaderIter
    saved = (base.__next__, dataloader.DataLoader.__iter__)
    mode = CpuLeakAudit()

    def pre(opt, args, kwargs):
        mode.in_optimizer_step += 1

    def post(opt, args, kwargs):
        mode.in_optimizer_step -= 1

    handles = [
        register_optimizer_step_pre_hook(pre),
        register_optimizer_step_post_hook(post),
    ]
    base.__next__ = _outside(base.__next__)
    dataloader.DataLoader.__iter__ = _outside(dataloader.DataLoader.__iter__)
    from torch.fx.experimental import _config as fx_config

    try:
        # boolean masks / nonzero inside aten's own kernels: all-true stand-ins on meta
        # torch.autocast(x.device.type) on meta: a CPU autocast region (benchmarks/meta_device.py)
        with fx_config.patch(meta_nonzero_assume_all_nonzero=True), meta_autocast(), mode:
            yield mode
    finally:
        base.__next__, dataloader.DataLoader.__iter__ = saved
        for h in handles:
            h.remove()


def on_meta(engine) -> None:
    """Make an engine built on the CPU run on ``meta``: its device, model, optimiser state."""
    engine.device = META
    engine.model.to(META)
    for opt in engine.optimizers.values():
        for state in opt.state.values():
            for k, v in state.items():
                if isinstance(v, torch.Tensor) and v.dim():
                    state[k] = v.to(META)


__all__ = ["META", "CpuLeakAudit", "audit", "on_meta"]
