#!/usr/bin/env bash
# Try specbench on a real engine without a GPU: installs vLLM's CPU build in its own
# virtualenv (.vllm-venv), builds the tiny target, draft and EAGLE-3 head (cached by
# content hash under ~/.cache/specbench/tiny-models), then runs a measured sweep of the
# chain length k = 1..4 at concurrency 1 and 4 with the tiny-llama preset. Extra
# arguments go to `specbench sweep` (e.g. --out runs/tiny).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v specbench >/dev/null 2>&1; then
  echo "try-vllm-cpu.sh: error: install specbench first (pip install torch==2.13.0 && pip install -e .)" >&2
  exit 2
fi
# shellcheck disable=SC1091
source .ci/vllm.sh
export SPECBENCH_VLLM_PYTHON="${VLLM_VENV}/bin/python"
echo "tiny models (built once, ~2 min on 2 cores) ..."
SPECBENCH_TINY_MODELS="$("$SPECBENCH_VLLM_PYTHON" tools/tiny_models.py --print-dir)"
export SPECBENCH_TINY_MODELS
export VLLM_CPU_KVCACHE_SPACE="${VLLM_CPU_KVCACHE_SPACE:-1}" HF_HUB_OFFLINE=1
exec specbench sweep --backend vllm --target tiny-llama --strategy grid \
  --space num_steps=1..4 --concurrency 1,4 --dataset tools/tiny_prompts.jsonl \
  --max-new-tokens 64 --ready-timeout 900 "$@"
