"""Launch wrapper for the killed-engine test: runs the server command as its child.

The first speculative server it starts (a marker file remembers) is killed with SIGKILL,
the api_server only, once the engine has generated ``tokens`` tokens (read from vLLM's
``vllm:generation_tokens_total``): mid-load, after the warm-up. Its EngineCore and
Worker are left orphaned in the session, the hardest case for the harness's cleanup.

    python kill_server.py MARKER TOKENS CMD...
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

_TOKENS = re.compile(r"^vllm:generation_tokens_total\{[^}]*\}\s+(\S+)", re.MULTILINE)


def _generated(port: str) -> float:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return 0.0
    return sum(float(v) for v in _TOKENS.findall(text))


def main() -> int:
    marker, tokens, cmd = Path(sys.argv[1]), float(sys.argv[2]), sys.argv[3:]
    child = subprocess.Popen(cmd)
    if "--speculative-config" in cmd and not marker.exists():
        marker.write_text(str(child.pid))
        port = cmd[cmd.index("--port") + 1]
        while child.poll() is None and _generated(port) < tokens:
            time.sleep(0.2)
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
    return child.wait()


if __name__ == "__main__":
    sys.exit(main())
