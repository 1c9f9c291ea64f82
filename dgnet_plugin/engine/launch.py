"""Start and stop multi-process training: torchrun's environment or ``--num-gpus`` spawning.

Two ways to run N processes, both ending in the same ``env://`` initialisation:

* ``torchrun --nproc_per_node N tools/train_net.py ...`` (one machine) or
  ``torchrun --nnodes M --node_rank R --nproc_per_node N --rdzv_backend c10d
  --rdzv_endpoint HOST:PORT tools/train_net.py ...`` (several machines). torchrun sets
  ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``;
  :func:`distributed_session` reads them.
* ``tools/train_net.py --num-gpus N [--num-machines M --machine-rank R --dist-url
  tcp://HOST:PORT]``: :func:`launch` spawns the N local processes itself
  (``torch.multiprocessing``, start method ``spawn``) with the variables torchrun would set.

Backend: NCCL when ``MODEL.DEVICE`` is CUDA (each process on ``cuda:LOCAL_RANK``), gloo on CPU
(tests and CPU clusters). ``WORLD_SIZE`` unset or 1: everything runs in the one process and no
process group is created.

Failures: each process destroys its process group in a ``finally``. When a process dies with
an error, the others must not wait forever in their next collective: torchrun's agent, and
:func:`launch` (``torch.multiprocessing``'s ``ProcessContext.join``), terminate the remaining
local processes and report the failure (``launch`` re-raises it in the parent). On several
machines started with ``--num-gpus``, the processes of the *other* machines only notice when the
backend's timeout (``timeout_minutes``, 30 by default) expires; use torchrun there.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import socket
import time
from collections.abc import Callable

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ..config import ConfigError


def env_world_size() -> int:
    """``WORLD_SIZE`` as set by torchrun or :func:`launch` (1 when unset)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def env_local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def uses_cuda(device_name: str) -> bool:
    """Whether ``MODEL.DEVICE`` (``auto``, ``cpu``, ``cuda``, ``cuda:K``) means CUDA here."""
    from .device import device_name as resolved_name

    return resolved_name(device_name).startswith("cuda")


@contextlib.contextmanager
def distributed_session(device_name: str, timeout_minutes: float = 30.0):
    """Initialise the default process group from torchrun's environment variables for the
    duration of the ``with`` block (NCCL for CUDA ``device_name``, gloo otherwise) and destroy
    it on the way out, also after an exception. A no-op when ``WORLD_SIZE`` is unset or 1, or
    when a process group already exists (the caller owns it)."""
    world = env_world_size()
    if world <= 1 or dist.is_initialized():
        yield
        return
    missing = [k for k in ("RANK", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise ConfigError(
            f"WORLD_SIZE={world} but {', '.join(missing)} is not set; start the processes with "
            "torchrun or tools/train_net.py --num-gpus"
        )
    cuda = uses_cuda(device_name)
    if cuda:
        if not torch.cuda.is_available():
            raise ConfigError(f"MODEL.DEVICE '{device_name}' but CUDA is not available")
        local = env_local_rank()
        if local >= torch.cuda.device_count():
            raise ConfigError(
                f"process with LOCAL_RANK {local} but only {torch.cuda.device_count()} CUDA "
                "device(s) on this machine; start at most that many processes per machine"
            )
        torch.cuda.set_device(local)
    backend = "nccl" if cuda else "gloo"
    dist.init_process_group(
        backend, init_method="env://", timeout=datetime.timedelta(minutes=timeout_minutes)
    )
    try:
        yield
    finally:
        dist.destroy_process_group()


def find_free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _parse_dist_url(dist_url: str, num_machines: int) -> tuple[str, int]:
    if dist_url in ("", "auto"):
        if num_machines > 1:
            raise ConfigError("--num-machines > 1 needs --dist-url tcp://HOST:PORT of machine 0")
        return "127.0.0.1", find_free_port()
    if not dist_url.startswith("tcp://") or ":" not in dist_url[len("tcp://") :]:
        raise ConfigError(f"--dist-url must look like tcp://HOST:PORT, got '{dist_url}'")
    host, port = dist_url[len("tcp://") :].rsplit(":", 1)
    return host, int(port)


def _worker(local_rank, main_func, nproc, num_machines, machine_rank, addr, port, args):
    os.environ.update(
        RANK=str(machine_rank * nproc + local_rank),
        LOCAL_RANK=str(local_rank),
        WORLD_SIZE=str(nproc * num_machines),
        LOCAL_WORLD_SIZE=str(nproc),
        MASTER_ADDR=addr,
        MASTER_PORT=str(port),
    )
    if "OMP_NUM_THREADS" not in os.environ:  # as torchrun: do not oversubscribe the cores
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // nproc))
    try:
        main_func(*args)
    except Exception as e:
        if _lost_peer(e):  # a consequence of another process's failure: let that one's error
            time.sleep(PEER_ERROR_GRACE_S)  # reach `launch` first, it names the cause
        raise


#: Seconds a process whose collective failed because a peer died waits before raising, so that
#: ``launch`` reports the peer's own error (``torch.multiprocessing.spawn`` re-raises the first
#: failure it sees).
PEER_ERROR_GRACE_S = 3.0

_PEER_LOST = ("Connection reset by peer", "Connection closed by peer", "Broken pipe")


def _lost_peer(e: BaseException) -> bool:
    return isinstance(e, RuntimeError) and any(m in str(e) for m in _PEER_LOST)


def launch(
    main_func: Callable,
    num_gpus_per_machine: int,
    num_machines: int = 1,
    machine_rank: int = 0,
    dist_url: str = "auto",
    args: tuple = (),
):
    """Run ``main_func(*args)`` in ``num_gpus_per_machine`` local processes (ranks
    ``machine_rank * num_gpus_per_machine + local_rank`` of a world of ``num_gpus_per_machine
    * num_machines``), with torchrun's environment variables set, so that ``main_func`` opens
    the process group with :func:`distributed_session`. On CPU the "GPUs" are gloo processes.

    A world of one calls ``main_func(*args)`` directly and returns its result. Otherwise it
    returns ``None`` when every process finished; when one fails, the others are terminated
    and ``torch.multiprocessing.ProcessRaisedException`` (an exception, with its traceback) or
    ``ProcessExitedException`` (``exit_code``: the process called ``sys.exit``) is raised.
    ``main_func`` and ``args`` must be picklable (start method ``spawn``).
    """
    if num_gpus_per_machine < 1 or num_machines < 1:
        raise ConfigError("--num-gpus and --num-machines must be >= 1")
    if not 0 <= machine_rank < num_machines:
        raise ConfigError(f"--machine-rank {machine_rank} not in [0, {num_machines})")
    world = num_gpus_per_machine * num_machines
    if world == 1:
        return main_func(*args)
    if env_world_size() > 1:
        raise ConfigError(
            "this process was started by torchrun (WORLD_SIZE is set): drop --num-gpus, "
            "torchrun's --nproc_per_node already sets the number of processes"
        )
    addr, port = _parse_dist_url(dist_url, num_machines)
    mp.start_processes(
        _worker,
        args=(main_func, num_gpus_per_machine, num_machines, machine_rank, addr, port, args),
        nprocs=num_gpus_per_machine,
        join=True,
        start_method="spawn",
    )
    return None
