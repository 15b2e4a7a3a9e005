#!/usr/bin/env bash
# Install SGLang's own argument parser (the PyPI `sglang` wheel) into a small virtualenv of
# its own, so that tests can put every launch line specbench builds through
# `sglang.srt.server_args.prepare_server_args`. Run or source it; $SGLANG_VENV (default
# .sglang-venv in the repository root) is the venv. Idempotent: a venv that already has
# the pinned sglang and torch and imports the parser is left as it is.
#
# SGLang cannot serve on a CPU machine (ENGINES.md), but parsing needs no GPU. The wheel
# goes in with --no-deps: its own requirements pin a CUDA torch and CUDA-only kernels.
# Beside it: the CPU torch from local disk (pip's find-links; never a CUDA build) and the
# packages `import sglang.srt.server_args` stops on without them, found by trying the
# import. triton (~1 GB, imported by sglang.srt.utils only to decorate GPU kernels) is
# left out; tests/support/sglang_parse.py stands a stub in for it.
set -euo pipefail
_sglang_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SGLANG_VENV="${SGLANG_VENV:-${_sglang_root}/.sglang-venv}"
SGLANG_VERSION="${SGLANG_VERSION:-0.5.23}"
SGLANG_TORCH_VERSION="${SGLANG_TORCH_VERSION:-2.13.0}"
export SGLANG_VENV

# What `import sglang.srt.server_args` needs of 0.5.23 (resolved with their own
# dependencies, so pydantic and pydantic-core stay a matching pair).
_sglang_import_deps=(
  numpy orjson psutil pybase64 requests packaging pillow starlette msgspec pydantic
  pyzmq tqdm ipython aiohttp
)

_sglang_t0=$(date +%s)
# This machine's pip config lists local index folders that may be absent; pip warns once
# per package about each. Drop those lines, keep every other message and pip's status.
_sglang_pip() { "${SGLANG_VENV}/bin/python" -m pip "$@" 2>&1 | { grep -v 'is ignored: it is neither a file nor a directory' || true; }; }
_sglang_step() { printf '[sglang.sh %3ss] %s\n' "$(( $(date +%s) - _sglang_t0 ))" "$1"; }

_sglang_installed() {
  [ -x "${SGLANG_VENV}/bin/python" ] || return 1
  "${SGLANG_VENV}/bin/python" - "$SGLANG_VERSION" "$SGLANG_TORCH_VERSION" <<'PY' 2>/dev/null
import sys
from importlib.metadata import PackageNotFoundError, version

want_sglang, want_torch = sys.argv[1], sys.argv[2]
try:
    ok = version("sglang") == want_sglang and version("torch").split("+")[0] == want_torch
except PackageNotFoundError:
    ok = False
sys.exit(0 if ok else 1)
PY
  "${SGLANG_VENV}/bin/python" "${_sglang_root}/tests/support/sglang_parse.py" --check >/dev/null 2>&1
}

if _sglang_installed; then
  _sglang_step "sglang ${SGLANG_VERSION} already installed in ${SGLANG_VENV}"
else
  _sglang_step "creating ${SGLANG_VENV}"
  rm -rf "$SGLANG_VENV"
  python3 -m venv "$SGLANG_VENV"
  _sglang_pip install -q --upgrade pip
  _sglang_step "torch ${SGLANG_TORCH_VERSION} (CPU wheel) and the parser's imports"
  _sglang_pip install -q "torch==${SGLANG_TORCH_VERSION}+cpu" "${_sglang_import_deps[@]}"
  _sglang_step "sglang ${SGLANG_VERSION} (--no-deps)"
  _sglang_pip install -q --no-deps "sglang==${SGLANG_VERSION}"
  if ! _sglang_installed; then
    "${SGLANG_VENV}/bin/python" "${_sglang_root}/tests/support/sglang_parse.py" --check || true
    echo "sglang.sh: error: ${SGLANG_VENV} cannot import sglang ${SGLANG_VERSION}'s parser (above)" >&2
    exit 1
  fi
fi
_sglang_step "$("${SGLANG_VENV}/bin/python" "${_sglang_root}/tests/support/sglang_parse.py" --check) ready ($(du -sh "$SGLANG_VENV" | cut -f1))"
