"""Launch arguments, launch_cmd templates, ports, SGLang argument parsing, process groups."""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from specbench.errors import BadInputError, InvalidConfigError, ServerError
from specbench.harness.engine import Deployment
from specbench.harness.net import check_port_free, free_port, port_in_use
from specbench.harness.server_backend import ServerBackend, compose_launch, split_server_args
from specbench.harness.sglang import SGLANG
from specbench.harness.sse_request import split_gap
from specbench.process.managed import ManagedProcess, live_process_groups, stop_all
from specbench.serve_sim.options import resolve_options
from specbench.serve_sim.scheduler import guess_domain
from specbench.spec_config import SpecConfig
from tests.support.servers import assert_group_gone, group_exists


# -- launch arguments ---------------------------------------------------------------------
def build_launch_args(target, config, *, tp=None, **kw):  # type: ignore[no-untyped-def]
    """The SGLang adapter's launch arguments for ``target`` served at ``tp``."""
    return SGLANG.launch_args(Deployment.of(target, tp=tp), config, **kw)


def test_launch_args_speculative(target) -> None:  # type: ignore[no-untyped-def]
    args = build_launch_args(
        target, SpecConfig(3, 4, 8), port=1234, server_args=["--mem-fraction-static", "0.8"]
    )
    assert args[:2] == ["--model-path", target.model_path]
    assert args[args.index("--port") + 1] == "1234"
    assert args[args.index("--tp-size") + 1] == str(target.default_tp)
    assert args[args.index("--speculative-algorithm") + 1] == target.algorithm
    assert args[args.index("--speculative-draft-model-path") + 1] == target.draft_model_path
    assert args[args.index("--speculative-num-steps") + 1] == "3"
    assert args[args.index("--speculative-eagle-topk") + 1] == "4"
    assert args[args.index("--speculative-num-draft-tokens") + 1] == "8"
    for extra in target.extra_server_args:
        assert extra in args
    # user arguments come last so that they override the preset
    assert args[-2:] == ["--mem-fraction-static", "0.8"]


def test_launch_args_baseline_has_no_speculative_flag(target) -> None:  # type: ignore[no-untyped-def]
    args = build_launch_args(target, None, tp=8, port=5, host="0.0.0.0")
    assert not [a for a in args if a.startswith("--speculative")]
    assert args[args.index("--tp-size") + 1] == "8"
    assert args[args.index("--host") + 1] == "0.0.0.0"


def test_compose_launch_templates() -> None:
    args = ["--model-path", "/models/my model", "--port", "1"]
    full = compose_launch(None, args)
    assert full[:3] == [sys.executable, "-m", "sglang.launch_server"]
    assert full[3:] == args
    # {cmd}: the whole command is substituted, quoted, and survives the split
    wrapped = compose_launch("srun -N1 --gpus 8 {cmd}", args)
    assert wrapped[:4] == ["srun", "-N1", "--gpus", "8"]
    assert wrapped[4:] == full
    # {args}: only the launch_server arguments
    docker = compose_launch(
        "docker exec box python3 -m sglang.launch_server {args} --log-level warning", args
    )
    assert docker == [
        "docker",
        "exec",
        "box",
        "python3",
        "-m",
        "sglang.launch_server",
        *args,
        "--log-level",
        "warning",
    ]
    # no placeholder: the full command is appended
    assert compose_launch("env FOO=1", args) == ["env", "FOO=1", *full]
    with pytest.raises(BadInputError, match="cannot parse"):
        compose_launch("srun 'unterminated {cmd}", args)


def test_split_server_args() -> None:
    assert split_server_args('--mem-fraction-static 0.8 --chat-template "a b"') == [
        "--mem-fraction-static",
        "0.8",
        "--chat-template",
        "a b",
    ]
    assert split_server_args(None) == []
    with pytest.raises(BadInputError):
        split_server_args('"open')


# -- ports ----------------------------------------------------------------------------------
def test_port_checks() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        busy = sock.getsockname()[1]
        assert port_in_use("127.0.0.1", busy)
        with pytest.raises(BadInputError, match=f"port {busy} is already in use"):
            check_port_free("127.0.0.1", busy)
    port = free_port()
    assert not port_in_use("127.0.0.1", port)


def test_backend_rejects_bad_construction(target) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(BadInputError):
        ServerBackend(target, endpoint="localhost:30000")
    with pytest.raises(BadInputError):
        ServerBackend(target, ready_timeout_s=0)


def test_config_from_server_info() -> None:
    info = {
        "speculative_algorithm": "EAGLE3",
        "speculative_num_steps": 5,
        "speculative_eagle_topk": 4,
        "speculative_num_draft_tokens": 8,
    }
    assert SGLANG.config_from_server_info(info) == SpecConfig(5, 4, 8)
    assert SGLANG.config_from_server_info({"speculative_algorithm": None}) is None
    with pytest.raises(ServerError):
        SGLANG.config_from_server_info({"speculative_algorithm": "EAGLE3"})


# -- serve-sim option resolution --------------------------------------------------------------
def test_parse_sglang_args_keeps_known_and_ignores_rest() -> None:
    sg = SGLANG.parse_launch_args(
        [
            "--model-path",
            "m",
            "--host",
            "0.0.0.0",
            "--port",
            "31000",
            "--tp-size",
            "8",
            "--mem-fraction-static",
            "0.8",
            "--speculative-algorithm",
            "EAGLE3",
            "--speculative-num-steps",
            "5",
            "--speculative-eagle-topk",
            "4",
            "--speculative-num-draft-tokens",
            "8",
            "--trust-remote-code",
        ]
    )
    assert (sg.model_path, sg.host, sg.port, sg.tp) == ("m", "0.0.0.0", 31000, 8)
    assert (sg.algorithm, sg.num_steps, sg.topk, sg.num_draft_tokens) == ("EAGLE3", 5, 4, 8)
    assert "--mem-fraction-static" in sg.ignored and "--trust-remote-code" in sg.ignored
    with pytest.raises(BadInputError, match="--sglang-args"):
        SGLANG.parse_launch_args(["--port", "notaport"])


def test_resolve_options_follows_sglang_rules(target) -> None:  # type: ignore[no-untyped-def]
    launch = build_launch_args(target, SpecConfig(5, 4, 8), port=4321, tp=8)
    opts = resolve_options(target=None, hardware=None, sglang_args=launch)
    assert opts.target.name == "minimax-m2.7"  # found from --model-path
    assert opts.config == SpecConfig(5, 4, 8) and opts.port == 4321
    assert opts.hardware.tp == 8
    base = resolve_options(
        target=None, hardware=None, sglang_args=build_launch_args(target, None, port=4321)
    )
    assert base.config is None
    auto = resolve_options(
        target="minimax-m2.7", hardware=None, sglang_args=["--speculative-algorithm", "EAGLE3"]
    )
    assert auto.config == target.auto_config
    assert resolve_options(target="minimax-m2.7", hardware=None).config == target.card_config
    assert resolve_options(target="minimax-m2.7", hardware=None, no_speculation=True).config is None
    direct = resolve_options(
        target="minimax-m2.7", hardware=None, num_steps=2, topk=1, num_draft_tokens=3
    )
    assert direct.config == SpecConfig(2, 1, 3)
    with pytest.raises(BadInputError, match="all three"):
        resolve_options(target="minimax-m2.7", hardware=None, num_steps=2)
    with pytest.raises(InvalidConfigError):
        resolve_options(
            target="minimax-m2.7", hardware=None, num_steps=1, topk=2, num_draft_tokens=8
        )
    with pytest.raises(BadInputError, match="--target is required"):
        resolve_options(target=None, hardware=None)
    by_path = resolve_options(
        target=None, hardware=None, sglang_args=["--model-path", target.model_path]
    )
    assert by_path.target.name == target.name
    with pytest.raises(BadInputError, match="no target preset serves --model-path 'x/y'"):
        resolve_options(target=None, hardware=None, sglang_args=["--model-path", "x/y"])
    with pytest.raises(BadInputError, match="time-scale"):
        resolve_options(target="minimax-m2.7", hardware=None, time_scale=0)


def test_guess_domain() -> None:
    known = ("chat", "code", "math")
    assert guess_domain("specbench-math-abc", "hello", known) == "math"
    assert guess_domain("other", "def f(x): return x", known) == "code"
    assert guess_domain(None, "Solve 3 + 4 = x", known) == "math"
    assert guess_domain(None, "Tell me about Rome", known) == "chat"


def test_split_gap_counts_every_token() -> None:
    assert split_gap(30.0, 3) == [10.0, 10.0, 10.0]
    assert split_gap(5.0, 0) == []


# -- process groups -----------------------------------------------------------------------------
#: A leader that starts a grandchild in its group, then ignores SIGTERM (forces SIGKILL).
_STUBBORN = (
    "import signal, subprocess, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "subprocess.Popen([sys.executable, '-c', 'import signal, time; "
    "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)'])\n"
    "print('start' + 'ed', flush=True)\n"
    "time.sleep(60)\n"
)


def _wait_for(path: Path, text: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in (path.read_text() if path.exists() else ""):
        assert time.monotonic() < deadline, f"{text!r} never appeared in {path}"
        time.sleep(0.02)


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def test_stop_kills_the_whole_group_even_when_sigterm_is_ignored(tmp_path: Path) -> None:
    log = tmp_path / "stubborn.log"
    proc = ManagedProcess([sys.executable, "-c", _STUBBORN], log_path=log, grace_s=0.5).start()
    _wait_for(log, "started")
    # The guardian, its command and the grandchild share the group.
    assert len(_group_members(proc.pgid)) == 3
    assert proc.pgid in live_process_groups()
    t0 = time.monotonic()
    code = proc.stop()
    assert time.monotonic() - t0 < 5
    # SIGKILLed by the launcher, or the guardian's exit after it SIGKILLed its command.
    assert code in (-signal.SIGKILL, 128 + signal.SIGKILL)
    assert_group_gone(proc.pgid)
    assert proc.pgid not in live_process_groups()
    assert "# specbench: starting" in log.read_text()
    assert proc.stop() == code  # idempotent


def test_context_manager_stops_on_exception_and_ctrl_c(tmp_path: Path) -> None:
    for exc_type in (RuntimeError, KeyboardInterrupt):
        log = tmp_path / f"{exc_type.__name__}.log"
        pgid = None
        with (
            pytest.raises(exc_type),
            ManagedProcess(
                [
                    sys.executable,
                    "-c",
                    "import time; print('u' + 'p!', flush=True); time.sleep(60)",
                ],
                log_path=log,
                grace_s=2,
            ) as proc,
        ):
            pgid = proc.pgid
            _wait_for(log, "up!")
            raise exc_type("boom")
        assert pgid is not None
        assert_group_gone(pgid)


def test_stop_all_safety_net(tmp_path: Path) -> None:
    procs = [
        ManagedProcess(
            [sys.executable, "-c", "import time; time.sleep(60)"], log_path=tmp_path / f"{i}.log"
        ).start()
        for i in range(2)
    ]
    stop_all(grace_s=2)
    for proc in procs:
        assert_group_gone(proc.pgid)
    assert live_process_groups() == []


def test_missing_executable_is_a_server_error(tmp_path: Path) -> None:
    with pytest.raises(ServerError, match="cannot start"):
        ManagedProcess(["/nonexistent/sglang"], log_path=tmp_path / "x.log").start()


def test_sigterm_to_specbench_stops_children(tmp_path: Path) -> None:
    """A specbench process killed with SIGTERM leaves no server behind (safety net)."""
    pidfile = tmp_path / "child.pid"
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from specbench.process.managed import ManagedProcess\n"
        f"p = ManagedProcess([sys.executable, '-c', 'import time; time.sleep(60)'], log_path=Path({str(tmp_path / 'c.log')!r})).start()\n"
        f"Path({str(pidfile)!r}).write_text(str(p.pgid))\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.monotonic() + 20
    while not pidfile.exists() or not pidfile.read_text():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    child_pgid = int(pidfile.read_text())
    assert group_exists(child_pgid)
    os.kill(parent.pid, signal.SIGTERM)
    assert parent.wait(20) == 128 + signal.SIGTERM
    assert_group_gone(child_pgid)


def test_shlex_roundtrip_of_launch_cmd_with_spaces(tmp_path: Path) -> None:
    # The substituted command keeps an argument with spaces as one argument.
    script = tmp_path / "echo args.py"
    script.write_text("import sys; print(sys.argv[1:])")
    argv = compose_launch(
        f"{shlex.quote(sys.executable)} {shlex.quote(str(script))} {{args}}",
        ["--chat-template", "a b"],
    )
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    assert out.strip() == str(["--chat-template", "a b"])
