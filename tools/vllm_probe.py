"""Run a real vLLM (CPU) server on the tiny models and record what it really speaks.

Produces the fixtures under tests/data/vllm/ and the measurements in its README: raw SSE
text of streamed completions and chat completions, non-streamed bodies with
`metrics.speculative_decoding`, /metrics before and after a load, /v1/models, /version,
/load, /server_info; acceptance length (tau) from the per-request metrics and from the
/metrics counter deltas; tokens/s with and without speculation; whether temperature-0
outputs match; RSS; and what the client and the process tree see when the server is
SIGTERMed or SIGKILLed.

Run with the vLLM virtualenv's python, after tools/tiny_models.py:

    .vllm-venv/bin/python tools/vllm_probe.py --out tests/data/vllm --scenario all
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tiny_models

HOST = "127.0.0.1"
MAX_TOKENS = 64
SPEC_METRIC_RE = re.compile(r"^(vllm:spec_decode_\w+_total)(\{[^}]*\})? ([0-9.e+-]+)$")


@dataclass
class Server:
    """One api_server process, started in its own session so its group can be killed."""

    args: list[str]
    port: int
    log_path: Path
    env_extra: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    start_seconds: float = 0.0

    def start(self) -> None:
        env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE="1", HF_HUB_OFFLINE="1", **self.env_extra)
        cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", *self.args]
        cmd += ["--host", HOST, "--port", str(self.port)]
        log = self.log_path.open("wb")
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        while time.monotonic() - t0 < 300:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"http://{HOST}:{self.port}/health", timeout=2) as r:
                    if r.status == 200:
                        self.start_seconds = time.monotonic() - t0
                        return
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError("server did not become healthy in 300 s")

    def group_pids(self) -> list[int]:
        assert self.proc is not None
        out = subprocess.run(
            ["ps", "-eo", "pid=,sid="], capture_output=True, text=True, check=True
        ).stdout
        return [
            int(p) for p, s in (ln.split() for ln in out.splitlines()) if int(s) == self.proc.pid
        ]

    def rss_mb(self) -> float:
        total = 0
        for pid in self.group_pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except OSError:
                pass
        return total / 1024

    def kill_group(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        """SIGTERM to the api_server alone, then SIGKILL whatever is left after 30 s.

        The api_server's own shutdown stops EngineCore and its worker and lets
        multiprocessing's resource tracker unlink the shared-memory ring buffers; after a
        SIGKILL they stay behind in /dev/shm/psm_*.
        """
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=30)
        self.kill_group()


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def post(port: int, path: str, body: dict[str, Any]) -> dict[str, Any]:
    req = urllib.request.Request(
        f"http://{HOST}:{port}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=120) as r:
        return dict(json.loads(r.read()))


def stream_raw(port: int, path: str, body: dict[str, Any]) -> tuple[str, list[float]]:
    """The raw SSE text and the arrival time of each `data:` event."""
    conn = http.client.HTTPConnection(HOST, port, timeout=120)
    conn.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    raw: list[str] = []
    times: list[float] = []
    t0 = time.monotonic()
    while True:
        line = resp.readline()
        if not line:
            break
        text = line.decode()
        raw.append(text)
        if text.startswith("data:"):
            times.append(time.monotonic() - t0)
    conn.close()
    return "".join(raw), times


def spec_counters(port: int) -> dict[str, float]:
    _, text = get(port, "/metrics")
    out: dict[str, float] = {}
    for line in text.splitlines():
        m = SPEC_METRIC_RE.match(line)
        if m:
            labels = m.group(2) or ""
            pos = re.search(r'position="(\d+)"', labels)
            key = m.group(1) + (f"[{pos.group(1)}]" if pos else "")
            out[key] = out.get(key, 0.0) + float(m.group(3))
    return out


def relevant_metrics(text: str) -> str:
    """The /metrics lines an adapter reads, in the server's own format."""
    keep = (
        "vllm:spec_decode",
        "vllm:cache_config_info",
        "vllm:num_requests",
        "vllm:generation_tokens",
    )
    lines = []
    for line in text.splitlines():
        name = line.split()[2] if line.startswith("# ") and len(line.split()) > 2 else line
        if name.startswith(keep):
            lines.append(line)
    return "\n".join(lines) + "\n"


def request_body(prompt: dict[str, Any], model: str, stream: bool) -> tuple[str, dict[str, Any]]:
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": MAX_TOKENS,
        "temperature": 0.0,
        "ignore_eos": True,
        "stream": stream,
    }
    if stream:
        body["stream_options"] = {"include_usage": True}
    if "messages" in prompt:
        body["messages"] = prompt["messages"]
        return "/v1/chat/completions", body
    body["prompt"] = prompt["prompt"]
    return "/v1/completions", body


def text_of(resp: dict[str, Any]) -> str:
    choice = resp["choices"][0]
    return str(choice.get("text") if "text" in choice else choice["message"]["content"])


def run_load(port: int, model: str, concurrency: int, repeat: int = 1) -> dict[str, Any]:
    """Every prompt (non-streamed, temperature 0), `concurrency` at a time."""
    prompts = tiny_models.make_prompts() * repeat
    results: list[dict[str, Any] | None] = [None] * len(prompts)
    lock = threading.Lock()
    next_index = [0]

    def worker() -> None:
        while True:
            with lock:
                i = next_index[0]
                next_index[0] += 1
            if i >= len(prompts):
                return
            path, body = request_body(prompts[i], model, stream=False)
            results[i] = post(port, path, body)

    before = spec_counters(port)
    t0 = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    after = spec_counters(port)
    done = [r for r in results if r is not None]
    tokens = sum(int(r["usage"]["completion_tokens"]) for r in done)
    summary: dict[str, Any] = {
        "concurrency": concurrency,
        "requests": len(done),
        "completion_tokens": tokens,
        "wall_s": round(wall, 2),
        "tokens_per_s": round(tokens / wall, 1),
        "texts": {p["id"]: text_of(r) for p, r in zip(prompts, done, strict=True)},
    }
    drafts = after.get("vllm:spec_decode_num_drafts_total", 0) - before.get(
        "vllm:spec_decode_num_drafts_total", 0
    )
    if drafts:
        accepted = after["vllm:spec_decode_num_accepted_tokens_total"] - before.get(
            "vllm:spec_decode_num_accepted_tokens_total", 0
        )
        summary["tau_metrics"] = round(1 + accepted / drafts, 3)
        summary["per_pos_accept_rate"] = [
            round((after[k] - before.get(k, 0)) / drafts, 3)
            for k in sorted(after)
            if k.startswith("vllm:spec_decode_num_accepted_tokens_per_pos")
        ]
    spec = [r.get("metrics", {}) or {} for r in done]
    spec = [m["speculative_decoding"] for m in spec if m.get("speculative_decoding")]
    if spec:
        steps = sum(s["num_spec_steps"] for s in spec)
        acc = sum(s["num_accepted_draft_tokens"] for s in spec)
        summary["tau_per_request"] = round(1 + acc / steps, 3)
        summary["tau_per_request_mean"] = round(
            sum(s["mean_acceptance_length"] for s in spec) / len(spec), 3
        )
    return summary


def compare_texts(load: dict[str, Any], report: dict[str, Any]) -> dict[str, Any]:
    """Replace the texts by how many equal the baseline's (temperature 0: lossless check)."""
    texts = load.pop("texts")
    key = f"baseline_texts_c{load['concurrency']}"
    if key not in report:
        report[key] = texts
    base = report[key]
    load["texts_equal_to_baseline"] = (
        f"{sum(base.get(k) == v for k, v in texts.items())}/{len(texts)}"
    )
    return load


def base_args(target: Path, max_num_seqs: int = 4) -> list[str]:
    return [
        "--model", str(target), "--served-model-name", "tiny-llama", "--dtype", DTYPE,
        "--max-model-len", "512", "--enforce-eager", "--max-num-seqs", str(max_num_seqs),
    ]  # fmt: skip


DTYPE = "float32"
# The last two protocol servers end by a signal to the api_server pid alone, mid-stream.
SIGNAL_TESTS = {"draft-identical-k3": signal.SIGTERM, "ngram-k3": signal.SIGKILL}


def spec_args(
    method: str, model: Path | None, k: int, extra: dict[str, Any] | None = None
) -> list[str]:
    cfg: dict[str, Any] = {"method": method, "num_speculative_tokens": k}
    if model is not None:
        cfg["model"] = str(model)
    cfg.update(extra or {})
    return ["--speculative-config", json.dumps(cfg), "--per-request-spec-decode-metrics", "summary"]


def write(out: Path, name: str, text: str) -> None:
    (out / name).write_text(text)
    print(f"  wrote {name} ({len(text)} bytes)", flush=True)


def record_protocol(server: Server, out: Path, tag: str) -> None:
    """Streams, bodies and endpoint texts for one server mode."""
    port = server.port
    completion = {"id": "p", "prompt": "3 4 5 6 7 8"}
    chat = {"id": "c", "messages": [{"role": "user", "content": "count from 12"}]}
    for prompt, kind in ((completion, "completions"), (chat, "chat")):
        path, body = request_body(prompt, "tiny-llama", stream=False)
        body["max_tokens"] = 24
        post(port, path, body)  # warm-up (the first ngram request compiles)
        raw, times = stream_raw(
            port, path, dict(body, stream=True, stream_options={"include_usage": True})
        )
        write(out, f"{tag}.{kind}.stream.txt", raw)
        write(out, f"{tag}.{kind}.json", json.dumps(post(port, path, body), indent=2) + "\n")
        print(f"  {tag} {kind}: {len(times)} data events", flush=True)
    if tag == "baseline":
        # Without include_usage: no usage chunk, so (per vLLM's serving code) no metrics.
        path, body = request_body(completion, "tiny-llama", stream=True)
        body.pop("stream_options")
        body["max_tokens"] = 8
        raw, _ = stream_raw(port, path, body)
        write(out, f"{tag}.completions.stream-no-usage.txt", raw)


def scenario_protocol(
    models: Path, out: Path, log_dir: Path, report: dict[str, Any], report_path: Path
) -> None:
    target = models / "target"
    modes: list[tuple[str, list[str], dict[str, str]]] = [
        ("baseline", [], {"VLLM_SERVER_DEV_MODE": "1"}),
        ("eagle3-k3", spec_args("eagle3", models / "eagle3", 3), {"VLLM_SERVER_DEV_MODE": "1"}),
        (
            "ngram-k3",
            spec_args("ngram", None, 3, {"prompt_lookup_max": 4, "prompt_lookup_min": 2}),
            {},
        ),
        ("draft-identical-k3", spec_args("draft_model", target, 3), {}),
    ]
    for tag, extra, env in modes:
        print(f"== {tag}", flush=True)
        server = Server(base_args(target) + extra, 8301, log_dir / f"{tag}.log", env)
        try:
            server.start()
            entry: dict[str, Any] = {"start_s": round(server.start_seconds, 1)}
            write(
                out, f"{tag}.metrics-before.txt", relevant_metrics(get(server.port, "/metrics")[1])
            )
            record_protocol(server, out, tag)
            for c in (1, 4):
                entry[f"c{c}"] = compare_texts(run_load(server.port, "tiny-llama", c), report)
            entry["rss_mb"] = round(server.rss_mb(), 0)
            entry["processes"] = len(server.group_pids())
            write(
                out, f"{tag}.metrics-after.txt", relevant_metrics(get(server.port, "/metrics")[1])
            )
            if tag in ("baseline", "eagle3-k3"):
                for path, name in (("/v1/models", "models.json"), ("/version", "version.json"),
                                   ("/load", "load.json")):  # fmt: skip
                    status, body = get(server.port, path)
                    write(out, f"{tag}.{name}", f"{status}\n{body}\n")
                status, body = get(server.port, "/server_info?config_format=json")
                if status == 200:
                    cfg = json.loads(body)["vllm_config"]
                    # Nested target/draft model and parallel configs are kept out (large).
                    keep = {
                        name: {
                            k: v
                            for k, v in (cfg.get(name) or {}).items()
                            if not isinstance(v, dict)
                        }
                        or None
                        for name in ("speculative_config", "scheduler_config")
                    }
                    keep["model_config.model"] = (cfg.get("model_config") or {}).get("model")
                    write(
                        out,
                        f"{tag}.server_info.speculative.json",
                        json.dumps(keep, indent=2, default=str) + "\n",
                    )
            report[tag] = entry
            print(json.dumps(entry, default=str), flush=True)
            if tag in SIGNAL_TESTS:
                report[f"signal-{tag}"] = signal_test(server, SIGNAL_TESTS[tag])
        finally:
            server.stop()
            report_path.write_text(json.dumps(report, indent=2) + "\n")


def scenario_eagle_sweep(
    models: Path, log_dir: Path, report: dict[str, Any], report_path: Path
) -> None:
    target = models / "target"
    for k in (1, 2, 4):
        tag = f"eagle3-k{k}"
        print(f"== {tag}", flush=True)
        server = Server(
            base_args(target) + spec_args("eagle3", models / "eagle3", k),
            8302,
            log_dir / f"{tag}.log",
        )
        try:
            server.start()
            entry: dict[str, Any] = {"start_s": round(server.start_seconds, 1)}
            for c in (1, 4):
                entry[f"c{c}"] = compare_texts(run_load(server.port, "tiny-llama", c), report)
            report[tag] = entry
            print(json.dumps(entry), flush=True)
        finally:
            server.stop()
            report_path.write_text(json.dumps(report, indent=2) + "\n")


def _survivors(server: Server) -> dict[str, str]:
    assert server.proc is not None
    out: dict[str, str] = {}
    for pid in server.group_pids():
        if pid == server.proc.pid:
            continue
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{pid}/stat").read_text().split()
            comm = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")[:80]
            out[str(pid)] = f"state={stat[2]} ppid={stat[3]} {comm.decode(errors='replace')}"
    return out


def signal_test(server: Server, sig: signal.Signals) -> dict[str, Any]:
    """Signal the api_server pid alone mid-stream; record the client's view and survivors."""
    assert server.proc is not None
    group_before = _survivors(server)
    conn = http.client.HTTPConnection(HOST, server.port, timeout=20)
    body = {"model": "tiny-llama", "prompt": "1 2 3", "max_tokens": 400, "ignore_eos": True,
            "temperature": 0.0, "stream": True}  # fmt: skip
    conn.request("POST", "/v1/completions", body=json.dumps(body),
                 headers={"Content-Type": "application/json"})  # fmt: skip
    resp = conn.getresponse()
    events = 0
    while events < 5:
        if resp.readline().startswith(b"data:"):
            events += 1
    os.kill(server.proc.pid, sig)
    t0 = time.monotonic()
    tail: list[str] = []
    symptom = "stream ended without error (EOF)"
    try:
        while True:
            line = resp.readline()
            if not line:
                break
            if line.strip():
                tail.append(line.decode()[:200])
    except Exception as exc:  # record whatever the client sees
        symptom = f"{type(exc).__module__}.{type(exc).__name__}: {exc}"
    client_seconds = time.monotonic() - t0
    api_seconds: float | None = None
    with contextlib.suppress(subprocess.TimeoutExpired):
        server.proc.wait(timeout=10)
        api_seconds = round(time.monotonic() - t0, 2)
    api_exit_after_close: float | None = None
    conn.close()
    resp.close()
    t1 = time.monotonic()
    with contextlib.suppress(subprocess.TimeoutExpired):
        server.proc.wait(timeout=30)
        api_exit_after_close = round(time.monotonic() - t1, 2)
    time.sleep(5)
    after_5s = _survivors(server)
    time.sleep(15)
    after_20s = _survivors(server)
    result = {
        "signal": sig.name,
        "client_symptom": symptom,
        "client_seconds_after_signal": round(client_seconds, 2),
        "data_lines_after_signal": len([t for t in tail if t.startswith("data:")]),
        "last_lines_after_signal": tail[-2:],
        "api_server_returncode": server.proc.returncode,
        "api_server_exit_seconds_with_stream_open": api_seconds,
        "api_server_exit_seconds_after_client_closed": api_exit_after_close,
        "children_before": group_before,
        "children_after_5s": after_5s,
        "children_after_20s": after_20s,
    }
    print(json.dumps(result), flush=True)
    return result


def main() -> int:
    global DTYPE
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("tests/data/vllm"))
    parser.add_argument("--logs", type=Path, default=Path("/tmp/vllm-probe-logs"))
    parser.add_argument("--scenario", choices=("protocol", "sweep", "all"), default="all")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--report", type=Path, default=Path("/tmp/vllm-probe-report.json"))
    args = parser.parse_args()
    DTYPE = args.dtype
    args.out.mkdir(parents=True, exist_ok=True)
    args.logs.mkdir(parents=True, exist_ok=True)
    models = tiny_models.ensure_models(
        tiny_models.BuildParams(), tiny_models.Path.home() / ".cache" / "specbench" / "tiny-models"
    )
    report: dict[str, Any] = json.loads(args.report.read_text()) if args.report.exists() else {}
    if args.scenario in ("protocol", "all"):
        scenario_protocol(models, args.out, args.logs, report, args.report)
    if args.scenario in ("sweep", "all"):
        scenario_eagle_sweep(models, args.logs, report, args.report)
    args.report.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
