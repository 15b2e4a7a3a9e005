"""Rich tables for ``specbench probe``: the verdict first, the numbers behind it after."""

from __future__ import annotations

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from specbench.topology.probe import ProbeResult


def _fmt_bytes(n: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n} B"


def _opt(v: object) -> str:
    return "-" if v is None else str(v)


Row = tuple[str, ...]


def _table(title: str, columns: tuple[str, ...], rows: list[Row], *, right: bool) -> Table:
    table = Table(title=title)
    for column in columns:
        table.add_column(column, justify="right" if right else "left")
    for row in rows:
        table.add_row(*row)
    return table


def _gpu_rows(result: ProbeResult) -> list[Row]:
    rows: list[Row] = []
    for g in result.inventory.gpus:
        cpus = g.cpu_affinity
        rows.append(
            (
                str(g.index),
                _opt(g.name),
                "-" if g.memory_gib is None else f"{g.memory_gib:.0f} GiB",
                f"{_opt(g.pcie_curr_gen)}/{_opt(g.pcie_max_gen)}",
                f"x{_opt(g.pcie_curr_width)}/x{_opt(g.pcie_max_width)}",
                _opt(g.numa_node),
                "-" if not cpus else f"{len(cpus)} ({min(cpus)}-{max(cpus)})",
                str(g.nvlinks_up),
                _opt(g.nvlink_version),
            )
        )
    return rows


def _pair_rows(result: ProbeResult) -> list[Row]:
    return [
        (
            f"{p.a}-{p.b}",
            p.topology_smi,
            _opt(p.topology_name),
            *(_opt(p.p2p.get(c)) for c in ("read", "write", "nvlink", "atomics")),
            _opt(p.torch_can_access_peer),
        )
        for p in result.inventory.pairs
    ]


def _copy_rows(result: ProbeResult) -> list[Row]:
    return [
        (f"{c.src}->{c.dst}", str(c.peer_access), f"{c.latency_us:.1f}", f"{c.bandwidth_gbps:.1f}")
        for c in result.p2p_copy
    ]


def _allreduce_rows(result: ProbeResult) -> list[Row]:
    return [
        (
            r.backend,
            r.mode,
            str(r.world_size),
            _fmt_bytes(r.bytes),
            f"{r.latency_us:.1f}",
            f"{r.algbw_gbps:.3f}",
            f"{r.busbw_gbps:.3f}",
            str(r.iters),
        )
        for r in result.allreduce
    ]


def _fit_rows(result: ProbeResult) -> list[Row]:
    return [
        (
            f.backend,
            f.mode,
            str(f.world_size),
            f"{f.alpha_us:.1f}",
            f"{f.bandwidth_gbps:.3f}",
            f"{f.r2:.3f}",
            f"{f.max_rel_err:.0%}",
        )
        for f in result.fits
    ]


#: (title, columns, rows, right-aligned) of each table, in the order they print.
_TABLES = (
    (
        "GPUs",
        ("#", "name", "memory", "PCIe gen (cur/max)", "width (cur/max)", "NUMA", "CPUs",
         "NVLink up", "NVLink ver"),
        _gpu_rows,
        False,
    ),
    (
        "GPU pairs (NVML P2P status, topology)",
        ("pair", "link", "level", "read", "write", "nvlink", "atomics", "torch peer"),
        _pair_rows,
        False,
    ),
    (
        "P2P copy (measured)",
        ("src->dst", "peer access", "latency us", "bandwidth GB/s"),
        _copy_rows,
        True,
    ),
    (
        "All-reduce (measured, slowest rank)",
        ("backend", "mode", "ranks", "size", "latency us", "algbw GB/s", "busbw GB/s", "iters"),
        _allreduce_rows,
        True,
    ),
    (
        "Alpha-beta fits: time = alpha + bytes / bandwidth",
        ("backend", "mode", "ranks", "alpha us", "bandwidth GB/s", "R^2", "max rel err"),
        _fit_rows,
        True,
    ),
)  # fmt: skip


def render(result: ProbeResult, console: Console) -> None:
    """The host line, one table per kind of measurement that has rows, then the verdict."""
    inv = result.inventory
    cls = result.classification
    host = result.host
    console.print(
        f"[bold]{host['hostname']}[/]: {host['cpu_count']} CPUs, torch {_opt(host['torch_version'])}, "
        f"driver {_opt(host['driver_version'])}, CUDA {_opt(host['cuda_driver_version'])}"
    )
    if not inv.nvml_available:
        console.print(f"[yellow]NVML absent:[/] {inv.nvml_unavailable_reason}")
    for title, columns, make_rows, right in _TABLES:
        rows = make_rows(result)
        if rows:
            console.print(_table(title, columns, rows, right=right))
    sg = cls.sglang
    body = Group(
        Text.from_markup(f"[bold]class:[/] {cls.interconnect_class.value}"),
        Text.from_markup(
            f"[bold]SGLang custom all-reduce:[/] {'on' if sg.custom_all_reduce else 'off'} ({sg.reason})"
        ),
        Text.from_markup(f"[bold]NCCL transport:[/] {sg.nccl_transport}"),
        Text(""),
        *(Text(f"- {line}") for line in cls.evidence),
    )
    console.print(Panel(body, title="Interconnect"))
