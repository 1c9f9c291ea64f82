"""Communication helpers over ``torch.distributed`` (no-ops in a single process).

Every function works without an initialised process group (world size 1), so single-process
code calls them unconditionally. Collectives must be called by every rank in the same order.
With the NCCL backend tensors travel on the rank's current CUDA device (set by
:func:`dgnet_plugin.engine.launch.distributed_session`); results come back on the device the
input was on.
"""

from __future__ import annotations

import io

import torch
import torch.distributed as dist
from torch import nn


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def get_world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def get_rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main_process() -> bool:
    return get_rank() == 0


def synchronize() -> None:
    """Barrier across all ranks (nothing in a single process)."""
    if is_distributed():
        if dist.get_backend() == "nccl":
            dist.barrier(device_ids=[torch.cuda.current_device()])
        else:
            dist.barrier()


def _comm_device() -> torch.device:
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """The element-wise mean of ``tensor`` over ranks (a new tensor; the input is unchanged)."""
    if not is_distributed():
        return tensor
    t = tensor.to(_comm_device(), copy=True)
    dist.all_reduce(t)
    return t.div_(get_world_size()).to(tensor.device)


def all_reduce_mean_(tensors: list[torch.Tensor]) -> None:
    """Replace each tensor of ``tensors`` (same dtype and device, e.g. gradients) by its
    element-wise mean over ranks, in place, with one ``all_reduce`` of their concatenation.
    Every rank must pass tensors of the same shapes in the same order."""
    if not is_distributed() or not tensors:
        return
    flat = torch.cat([t.reshape(-1) for t in tensors]).to(_comm_device())
    dist.all_reduce(flat)
    flat = flat.div_(get_world_size()).to(tensors[0].device)
    offset = 0
    for t in tensors:
        t.copy_(flat[offset : offset + t.numel()].view_as(t))
        offset += t.numel()


def all_reduce_max(tensor: torch.Tensor) -> torch.Tensor:
    """The element-wise maximum of ``tensor`` over ranks (a new tensor; the input is
    unchanged), e.g. a stop flag that any rank may raise."""
    if not is_distributed():
        return tensor
    t = tensor.to(_comm_device(), copy=True)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t.to(tensor.device)


def all_gather_cat(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's ``tensor`` along dim 0, rank 0 first, on every rank.

    The first dimension may differ between ranks (shards of unequal size); the other
    dimensions and the dtype must match.
    """
    if not is_distributed():
        return tensor
    dev = _comm_device()
    n = torch.tensor([tensor.shape[0]], device=dev, dtype=torch.int64)
    sizes = [torch.empty_like(n) for _ in range(get_world_size())]
    dist.all_gather(sizes, n)
    sizes = [int(s.item()) for s in sizes]
    padded = tensor.new_zeros((max(sizes), *tensor.shape[1:]), device=dev)
    padded[: tensor.shape[0]] = tensor.to(dev)
    out = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(out, padded)
    return torch.cat([o[:s] for o, s in zip(out, sizes)]).to(tensor.device)


def _to_bytes(obj) -> torch.Tensor:
    buf = io.BytesIO()
    torch.save(obj, buf)  # handles tensors inside obj (RNG states)
    return torch.frombuffer(bytearray(buf.getvalue()), dtype=torch.uint8)


def _from_bytes(t: torch.Tensor):
    # weights_only=False: the bytes come from this job's own processes
    return torch.load(io.BytesIO(t.cpu().numpy().tobytes()), weights_only=False)


def all_gather_object(obj) -> list:
    """``[obj of rank 0, obj of rank 1, ...]`` on every rank (serialised with ``torch.save``;
    for small objects such as RNG states). torch's own ``all_gather_object`` cannot carry
    tensors over gloo in torch 2.14 (its unpickler fails on tensor storages)."""
    if not is_distributed():
        return [obj]
    data = _to_bytes(obj)
    sizes = all_gather_cat(torch.tensor([data.numel()], dtype=torch.int64)).tolist()
    flat = all_gather_cat(data)
    return [_from_bytes(c) for c in flat.split(sizes)]


def broadcast_object(obj, src: int = 0):
    """Rank ``src``'s ``obj`` on every rank (serialised with ``torch.save``; small objects)."""
    if not is_distributed():
        return obj
    dev = _comm_device()
    data = _to_bytes(obj).to(dev) if get_rank() == src else None
    n = torch.tensor([data.numel() if data is not None else 0], dtype=torch.int64, device=dev)
    dist.broadcast(n, src=src)
    if data is None:
        data = torch.empty(int(n.item()), dtype=torch.uint8, device=dev)
    dist.broadcast(data, src=src)
    return _from_bytes(data)


def shard_range(n: int, rank: int | None = None, world_size: int | None = None) -> range:
    """The contiguous share of ``range(n)`` of ``rank``: shares differ in size by at most one
    and their concatenation in rank order is ``range(n)``."""
    rank = get_rank() if rank is None else rank
    world_size = get_world_size() if world_size is None else world_size
    base, extra = divmod(n, world_size)
    start = rank * base + min(rank, extra)
    return range(start, start + base + (1 if rank < extra else 0))


@torch.no_grad()
def broadcast_module(module: nn.Module, src: int = 0, buffers_only: bool = False) -> None:
    """Copy rank ``src``'s parameters (unless ``buffers_only``) and buffers into ``module`` on
    every rank: one flattened broadcast per dtype."""
    if not is_distributed():
        return
    tensors = [] if buffers_only else [p.data for p in module.parameters()]
    tensors += list(module.buffers())
    by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
    for t in tensors:
        if t.numel() > 0:
            by_dtype.setdefault(t.dtype, []).append(t)
    dev = _comm_device()
    for group in by_dtype.values():
        flat = torch.cat([t.reshape(-1).to(dev) for t in group])
        dist.broadcast(flat, src=src)
        for t, v in zip(group, flat.split([t.numel() for t in group])):
            t.copy_(v.view_as(t))
