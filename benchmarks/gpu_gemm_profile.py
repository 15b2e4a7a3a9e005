"""Measure how a dense decoder's weight GEMMs scale with the tokens of one forward (needs a GPU).

The performance model prices a target forward over M tokens as a roofline of weight reads
(``hbm_gbps * hbm_efficiency``) and compute at ``compute_efficiency`` of peak, with every
GEMM padded to ``M + gemm_pad_tokens`` tokens (specbench/model/cost.py). Those three
numbers decide how much a verify pass of 8 or 64 tokens costs against a plain decode step,
so they are what this script measures on a real GPU: the linear layers of
Llama-3.1-8B (32 layers: qkv 4096x6144, o 4096x4096, gate_up 4096x28672, down 14336x4096;
random bf16 weights, distinct per layer so nothing stays in L2) run as one CUDA graph for
M = 1 .. 4096 tokens, timed with CUDA events. It prints each M's time as a ratio against
M = 1 measured in the same run, the weight bandwidth reached, the TFLOP/s reached, then
fits the model's own roofline (hbm_efficiency, compute_efficiency, gemm_pad_tokens) to
the measured times and prints the fit beside the shipped profile's values.

Attention, norms and the KV cache are left out on purpose: they do not depend on the
weight GEMMs' M and the model prices them apart.

Run: python benchmarks/gpu_gemm_profile.py [--profile h200-nvlink] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

LAYERS = 32
HIDDEN = 4096
SHAPES = ((HIDDEN, 6144), (HIDDEN, HIDDEN), (HIDDEN, 28672), (14336, HIDDEN))
TOKENS = (1, 2, 4, 8, 16, 32, 48, 64, 96, 128, 192, 256, 384, 512, 1024, 2048, 4096)
ROOF_P = 3.0  # the model's smooth max (specbench/model/cost.py _ROOF_P)


def _forward_fn(torch: Any, m: int, weights: list[Any], fp8: bool) -> Any:
    """One forward's weight GEMMs over `m` tokens, as a closure to capture in a graph.

    fp8 uses torch._scaled_mm with per-tensor scales (what FP8 checkpoints such as
    MiniMax-M2's run through); it needs M padded to a multiple of 16, as engines pad.
    """
    rows = -(-m // 16) * 16 if fp8 else m
    dtype = torch.float8_e4m3fn if fp8 else torch.bfloat16
    x = torch.randn(rows, HIDDEN, device="cuda").to(dtype)
    down_in = torch.randn(rows, 14336, device="cuda").to(dtype)
    one = torch.tensor(1.0, device="cuda")
    outs = {n: torch.empty(rows, n, device="cuda", dtype=torch.bfloat16) for _, n in SHAPES}

    def forward() -> None:
        for layer in range(LAYERS):
            for (k, n), w in zip(SHAPES, weights[layer * 4 : layer * 4 + 4], strict=True):
                src = down_in if k == 14336 else x
                if fp8:
                    torch._scaled_mm(src, w, one, one, out_dtype=torch.bfloat16)
                else:
                    torch.matmul(src, w, out=outs[n])

    return forward


def _time_graph(torch: Any, m: int, weights: list[Any], replays: int, fp8: bool) -> float:
    """Seconds per replay of one forward's weight GEMMs over `m` tokens."""
    forward = _forward_fn(torch, m, weights, fp8)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            forward()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        forward()
    for _ in range(5):
        graph.replay()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    samples = []
    for _ in range(replays):
        start.record()
        graph.replay()
        end.record()
        end.synchronize()
        samples.append(start.elapsed_time(end) / 1e3)
    samples.sort()
    return float(samples[len(samples) // 2])


def _fit_roofline(
    rows: list[dict[str, float]], hbm_gbps: float, peak_tflops: float, weight_bytes: float
) -> dict[str, float]:
    """Least squares on log time of the model's roofline over (hbm_eff, compute_eff, pad)."""
    import numpy as np
    from scipy.optimize import least_squares

    m = np.array([r["tokens"] for r in rows], dtype=float)
    t = np.array([r["seconds"] for r in rows], dtype=float)
    params = float(rows[0]["weight_params"])

    def model(x: np.ndarray) -> np.ndarray:
        hbm_eff, comp_eff, pad = x
        mem = params * weight_bytes / (hbm_gbps * 1e9 * hbm_eff)
        comp = 2.0 * params * (m + pad) / (peak_tflops * 1e12 * comp_eff)
        out: np.ndarray = (mem**ROOF_P + comp**ROOF_P) ** (1.0 / ROOF_P)
        return out

    fit = least_squares(
        lambda x: np.log(model(x)) - np.log(t),
        x0=[0.8, 0.7, 64.0],
        bounds=([0.05, 0.05, 0.0], [1.0, 1.0, 4096.0]),
    )
    resid = np.exp(np.abs(fit.fun)) - 1.0
    return {
        "hbm_efficiency": float(fit.x[0]),
        "compute_efficiency": float(fit.x[1]),
        "gemm_pad_tokens": float(fit.x[2]),
        "max_abs_error": float(resid.max()),
        "median_abs_error": float(np.median(resid)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="h200-nvlink", help="shipped hardware profile")
    parser.add_argument("--replays", type=int, default=30)
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    parser.add_argument("--dtype", choices=("bf16", "fp8"), default="bf16", help="weight dtype")
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("gpu_gemm_profile: no CUDA device; this benchmark needs a GPU", file=sys.stderr)
        return 2
    from specbench.model import load_hardware

    gpu = load_hardware(args.profile).gpu
    torch.manual_seed(0)
    fp8 = args.dtype == "fp8"
    # _scaled_mm takes its second operand column-major: store [n, k] and pass the view.
    weights = [
        (torch.randn(n, k, device="cuda") * 0.02).to(torch.float8_e4m3fn).t()
        if fp8
        else torch.randn(k, n, device="cuda", dtype=torch.bfloat16) * 0.02
        for _ in range(LAYERS)
        for k, n in SHAPES
    ]
    weight_bytes = 1.0 if fp8 else 2.0
    params = LAYERS * sum(k * n for k, n in SHAPES)
    rows: list[dict[str, float]] = []
    for m in TOKENS:
        sec = _time_graph(torch, m, weights, args.replays, fp8)
        rows.append(
            {
                "tokens": m,
                "seconds": sec,
                "weight_params": params,
                "weight_gbps": params * weight_bytes / sec / 1e9,
                "tflops": 2.0 * params * m / sec / 1e12,
            }
        )
    base = rows[0]["seconds"]
    print(f"device: {torch.cuda.get_device_name(0)}; torch {torch.__version__}")
    print(
        f"{params / 1e9:.2f} B weight params ({args.dtype}), {args.replays} graph replays per M, median"
    )
    print(f"{'M':>5} {'ms':>8} {'x M=1':>7} {'GB/s':>7} {'TFLOP/s':>8}")
    for r in rows:
        print(
            f"{int(r['tokens']):>5} {r['seconds'] * 1e3:>8.3f} {r['seconds'] / base:>7.2f}"
            f" {r['weight_gbps']:>7.0f} {r['tflops']:>8.1f}"
        )
    peak = gpu.peak_tflops_fp8 if fp8 else gpu.peak_tflops_bf16
    fit = _fit_roofline(rows, gpu.hbm_gbps, peak, weight_bytes)
    print(
        f"roofline fit: hbm_efficiency {fit['hbm_efficiency']:.3f}, compute_efficiency"
        f" {fit['compute_efficiency']:.3f}, gemm_pad_tokens {fit['gemm_pad_tokens']:.0f}"
        f" (median error {fit['median_abs_error']:.1%}, max {fit['max_abs_error']:.1%})"
    )
    print(
        f"profile {args.profile}: hbm_efficiency {gpu.hbm_efficiency}, compute_efficiency"
        f" {gpu.compute_efficiency}, gemm_pad_tokens {gpu.gemm_pad_tokens}"
    )
    if args.json is not None:
        payload = {
            "device": torch.cuda.get_device_name(0),
            "dtype": args.dtype,
            "rows": rows,
            "fit": fit,
        }
        args.json.write_text(json.dumps(payload, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
