"""Running the package's engines on the ``meta`` device (shapes and dtypes, no data), for the
FLOP estimate (``bench_flops.py``) and the device audit (``tests/device_audit.py``).

``torch.autocast("meta", ...)`` raises (``RuntimeError: unsupported scalarType``: autocast
knows no ``meta`` dtype). :class:`MetaAutocast` reads ``meta`` as the CPU, so code written
``torch.autocast(x.device.type, ...)`` (DG-Net's float32 regions) runs there as a CPU autocast
region (a disabled region, or CPU autocast's dtype rules); :func:`meta_autocast` installs it
as ``torch.autocast`` / ``torch.amp.autocast`` for the duration of a block. Engines on
``meta`` run float32 anyway: ``PhaseUpdater.for_device`` turns ``SOLVER.AMP`` off on any
device other than CUDA.

:class:`FlopCount` counts FLOPs with ``torch.utils.flop_counter``'s formulas but without
``FlopCounterMode``'s module tracker, whose backward hooks raise inside
``torch.autograd.grad`` of a leaf input (DG-Net's real-image gradient penalty).
"""

from __future__ import annotations

import contextlib

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry


class MetaAutocast(torch.autocast):
    """``torch.autocast`` that accepts ``device_type="meta"`` (as ``"cpu"``)."""

    def __init__(self, device_type, *args, **kwargs):
        super().__init__("cpu" if device_type == "meta" else device_type, *args, **kwargs)


@contextlib.contextmanager
def meta_autocast():
    """``with meta_autocast():`` the block with :class:`MetaAutocast` as ``torch.autocast``
    and ``torch.amp.autocast`` (restored on exit, also after an error)."""
    saved = (torch.autocast, torch.amp.autocast)
    torch.autocast = torch.amp.autocast = MetaAutocast
    try:
        yield
    finally:
        torch.autocast, torch.amp.autocast = saved


class FlopCount(TorchDispatchMode):
    """``with FlopCount() as c:`` the FLOPs of the block's aten ops (matrix products,
    convolutions, attention: ``torch.utils.flop_counter.flop_registry``; element-wise ops
    count 0), forward and backward, in :meth:`get_total_flops`."""

    def __init__(self):
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.total += formula(*args, **kwargs, out_val=out)
        return out

    def get_total_flops(self) -> int:
        return self.total


class MetaScalars(TorchDispatchMode):
    """Host reads of ``meta`` values (``.item()``, ``bool(t)``) answered with stand-ins:
    ``True`` for a boolean, ``1`` otherwise (``meta`` has no values; as the device audit)."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten._local_scalar_dense.default and args[0].device.type == "meta":
            x = args[0]
            return True if x.dtype == torch.bool else (1.0 if x.is_floating_point() else 1)
        return func(*args, **(kwargs or {}))


__all__ = ["FlopCount", "MetaScalars", "MetaAutocast", "meta_autocast"]
