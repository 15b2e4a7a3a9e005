"""All-reduce and peer-copy measurement with real ranks.

Ranks are spawned processes joined through a TCP rendezvous on a free local port, the way
SGLang's tensor-parallel workers are, so the numbers include what a serving process pays
(NCCL's chosen transport, gloo's loopback TCP) and nothing is shared by accident. Every
rank times the same number of iterations (agreed by an all-reduce of the warm-up
estimate, so no rank waits on a collective the others skipped), and the slowest rank's
time is reported, as nccl-tests does. No child outlives a call: they are joined with a
deadline and terminated, then killed, on any error or Ctrl-C, and on Linux the kernel
kills them if the probe process itself is killed.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import queue as queue_mod
import signal
import socket
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from specbench.errors import RunFailedError

#: --backends name -> (torch.distributed backend, mode label, extra environment).
BACKENDS: dict[str, tuple[str, str, dict[str, str]]] = {
    "nccl": ("nccl", "default", {}),
    # NVLS (NVLink SHARP on NVSwitch boxes) bypasses the P2P transport, so it goes too.
    "nccl-host-staged": ("nccl", "host-staged", {"NCCL_P2P_DISABLE": "1", "NCCL_NVLS_ENABLE": "0"}),
    "gloo": ("gloo", "cpu", {}),
}
GPU_BACKENDS = frozenset({"nccl", "nccl-host-staged"})


@dataclass(frozen=True)
class AllReduceRow:
    backend: str
    mode: str
    world_size: int
    bytes: int
    #: Slowest rank's per-iteration time: mean over a CUDA-event-timed loop on GPU,
    #: median of perf_counter-timed iterations on CPU.
    latency_us: float
    algbw_gbps: float
    busbw_gbps: float
    iters: int


@dataclass(frozen=True)
class P2PCopyRow:
    src: int
    dst: int
    peer_access: bool
    latency_us: float
    latency_bytes: int
    bandwidth_gbps: float
    bandwidth_bytes: int


@dataclass(frozen=True)
class TimingPlan:
    """How long to spend per message size; ranks derive the same iteration count."""

    warmup: int
    min_iters: int
    max_iters: int
    budget_s: float
    timeout_s: float


def make_row(
    backend: str, mode: str, world_size: int, nbytes: int, seconds: float, iters: int
) -> AllReduceRow:
    """nccl-tests definitions: algbw = bytes / time, all-reduce busbw = algbw * 2(n-1)/n."""
    algbw = nbytes / seconds / 1e9
    busbw = algbw * 2 * (world_size - 1) / world_size
    return AllReduceRow(backend, mode, world_size, nbytes, seconds * 1e6, algbw, busbw, iters)


def free_port() -> int:
    """A currently free TCP port on the loopback interface for the rendezvous."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


#: prctl(2) option: signal this process when its parent dies.
_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int) -> None:
    """Make the kernel kill this rank when the probe process dies, even by SIGKILL.

    The parent's ``finally`` reaps ranks on errors and Ctrl-C, but a SIGKILL (the OOM
    killer, ``kill -9``, a CI timeout) runs no Python code: without this the ranks would
    go on measuring, orphaned, until their collectives or the rendezvous time out.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def _rank_main(
    rank: int,
    world_size: int,
    port: int,
    dist_backend: str,
    env: dict[str, str],
    sizes: list[int],
    plan: TimingPlan,
    out: Any,
    parent_pid: int | None = None,
) -> None:
    """One rank: join the group, time every size, send (rank, size, seconds, iters)."""
    if parent_pid is not None:
        _die_with_parent(parent_pid)
    try:
        os.environ.update(env)
        import torch
        import torch.distributed as dist

        on_gpu = dist_backend == "nccl"
        if on_gpu:
            torch.cuda.set_device(rank)
            device = torch.device("cuda", rank)
            dtype = torch.bfloat16  # what SGLang's TP all-reduce carries
        else:
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // world_size))
            device = torch.device("cpu")
            dtype = torch.float32
        dist.init_process_group(
            dist_backend,
            init_method=f"tcp://127.0.0.1:{port}",
            rank=rank,
            world_size=world_size,
            timeout=timedelta(seconds=plan.timeout_s),
        )

        def sync() -> None:
            if on_gpu:
                torch.cuda.synchronize(device)

        def barrier() -> None:
            if on_gpu:
                dist.barrier(device_ids=[rank])
            else:
                dist.barrier()

        elem = torch.tensor([], dtype=dtype).element_size()
        for nbytes in sizes:
            x = torch.ones(max(1, nbytes // elem), dtype=dtype, device=device)
            sync()
            t0 = time.perf_counter()
            for _ in range(plan.warmup):
                dist.all_reduce(x)
            sync()
            est = torch.tensor([(time.perf_counter() - t0) / plan.warmup], dtype=torch.float64)
            if on_gpu:
                est = est.to(device)
            # Every rank must run the same number of collectives: agree on the estimate.
            dist.all_reduce(est, op=dist.ReduceOp.MAX)
            per_op = max(float(est.item()), 1e-7)
            iters = int(min(plan.max_iters, max(plan.min_iters, plan.budget_s / per_op)))
            barrier()
            if on_gpu:
                event: Any = torch.cuda.Event  # untyped in torch's stubs
                start, end = event(enable_timing=True), event(enable_timing=True)
                start.record()
                for _ in range(iters):
                    dist.all_reduce(x)
                end.record()
                end.synchronize()
                seconds = start.elapsed_time(end) / 1e3 / iters
            else:
                times = []
                for _ in range(iters):
                    t = time.perf_counter()
                    dist.all_reduce(x)
                    times.append(time.perf_counter() - t)
                seconds = statistics.median(times)
            out.put((rank, nbytes, seconds, iters))
            del x
        barrier()
        dist.destroy_process_group()
        out.put((rank, "done", 0.0, 0))
    except BaseException as exc:  # report, then die: the parent owns the error message
        out.put((rank, "error", f"{type(exc).__name__}: {exc}", 0))


def measure_allreduce(
    backend_name: str,
    world_size: int,
    sizes: Sequence[int],
    plan: TimingPlan,
    on_size: Callable[[int], None] | None = None,
) -> list[AllReduceRow]:
    """Spawn ``world_size`` ranks, time an all-reduce at every size, return one row each."""
    import torch.multiprocessing as mp

    dist_backend, mode, extra_env = BACKENDS[backend_name]
    env = dict(extra_env)
    if dist_backend == "gloo" and "GLOO_SOCKET_IFNAME" not in os.environ:
        env["GLOO_SOCKET_IFNAME"] = "lo"  # all ranks are local; avoid hostname lookups
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    port = free_port()
    procs = [
        ctx.Process(
            target=_rank_main,
            args=(r, world_size, port, dist_backend, env, list(sizes), plan, out, os.getpid()),
            daemon=True,
            name=f"specbench-{backend_name}-rank{r}",
        )
        for r in range(world_size)
    ]
    per_size: dict[int, list[tuple[float, int]]] = {}
    done = 0
    deadline = time.monotonic() + plan.timeout_s + 30.0
    try:
        for p in procs:
            p.start()
        while done < world_size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RunFailedError(f"{backend_name} all-reduce with {world_size} ranks timed out")
            try:
                rank, key, value, iters = out.get(timeout=min(1.0, remaining))
            except queue_mod.Empty:
                dead = [p for p in procs if p.exitcode not in (None, 0)]
                if dead:
                    raise RunFailedError(
                        f"{backend_name} rank process {dead[0].name} died with exit code {dead[0].exitcode}"
                    ) from None
                continue
            if key == "error":
                raise RunFailedError(f"{backend_name} all-reduce failed on rank {rank}: {value}")
            if key == "done":
                done += 1
                continue
            per_size.setdefault(int(key), []).append((float(value), int(iters)))
            if len(per_size[int(key)]) == world_size and on_size is not None:
                on_size(int(key))
    finally:
        _reap(procs)
        out.close()
    rows = []
    for nbytes in sizes:
        results = per_size[nbytes]
        slowest = max(t for t, _ in results)
        rows.append(make_row(dist_backend, mode, world_size, nbytes, slowest, results[0][1]))
    return rows


def _reap(procs: Sequence[Any]) -> None:
    """Join children briefly, then terminate, then kill: nothing may outlive the probe."""
    deadline = time.monotonic() + 5.0
    for p in procs:
        if p.pid is None:
            continue
        p.join(timeout=max(0.0, deadline - time.monotonic()))
    for p in procs:
        if p.pid is not None and p.is_alive():
            p.terminate()
    for p in procs:
        if p.pid is not None:
            p.join(timeout=2.0)
            if p.is_alive():
                p.kill()
                p.join(timeout=2.0)


def measure_p2p_copy(
    gpu_count: int,
    latency_bytes: int = 4,
    bandwidth_bytes: int = 256 * 2**20,
    iters: int = 10,
    on_pair: Callable[[], None] | None = None,
) -> list[P2PCopyRow]:
    """Time device-to-device copies for every ordered GPU pair (CUDA events on the source).

    torch enables peer access on its own when ``can_device_access_peer`` is true; when it
    is false the copy still works but is staged through host memory, which is exactly the
    difference this measures.
    """
    import torch

    rows: list[P2PCopyRow] = []
    for src in range(gpu_count):
        for dst in range(gpu_count):
            if src == dst:
                continue
            peer = bool(torch.cuda.can_device_access_peer(src, dst))
            timed: list[float] = []
            for nbytes in (latency_bytes, bandwidth_bytes):
                a = torch.empty(nbytes, dtype=torch.uint8, device=f"cuda:{src}")
                b = torch.empty(nbytes, dtype=torch.uint8, device=f"cuda:{dst}")
                with torch.cuda.device(src):
                    for _ in range(3):
                        b.copy_(a, non_blocking=True)
                    torch.cuda.synchronize(src)
                    torch.cuda.synchronize(dst)
                    event: Any = torch.cuda.Event  # untyped in torch's stubs
                    start, end = event(enable_timing=True), event(enable_timing=True)
                    start.record()
                    for _ in range(iters):
                        b.copy_(a, non_blocking=True)
                    end.record()
                    end.synchronize()
                    torch.cuda.synchronize(dst)
                timed.append(start.elapsed_time(end) / 1e3 / iters)
                del a, b
            rows.append(
                P2PCopyRow(
                    src=src,
                    dst=dst,
                    peer_access=peer,
                    latency_us=timed[0] * 1e6,
                    latency_bytes=latency_bytes,
                    bandwidth_gbps=bandwidth_bytes / timed[1] / 1e9,
                    bandwidth_bytes=bandwidth_bytes,
                )
            )
            if on_pair is not None:
                on_pair()
    with contextlib.suppress(Exception):
        torch.cuda.empty_cache()
    return rows
