#!/usr/bin/env bash
# GPU check of the model server (issue 6): one script for a CUDA machine, bounded to 8 minutes.
#
#   bash benchmarks/gpu_check.sh            # on the GPU host, from the repository root
#
# It uses the machine's own PyTorch (never installs one), installs the few serving packages that are missing
# (from ./.whl when the machine has no package index: see docs/gpu-host.md for the download command), builds a
# randomly initialised Qwen2.5-1.5B-shaped model in bf16, serves it with our server, and prints latency for
# 5 candidates x 60 tokens at concurrency 1, 4, 16 and 64 (p50, p95, requests and tokens per second), sixteen
# requests sent at once against one alone, and the adapter hot-swap time.
# With $OUT set, the report is also written to $OUT/gpu_check.json.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

if ! "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    echo "gpu_check: no CUDA device is visible to $PY (or PyTorch is missing); run this on the GPU host" >&2
    exit 2
fi

missing=$("$PY" - <<'PYCODE'
import importlib.util
need = {"fastapi": "fastapi", "uvicorn": "uvicorn", "httpx": "httpx", "pydantic": "pydantic", "peft": "peft",
        "transformers": "transformers", "tokenizers": "tokenizers", "safetensors": "safetensors"}
print(" ".join(pkg for module, pkg in need.items() if importlib.util.find_spec(module) is None))
PYCODE
)
if [ -n "$missing" ]; then
    echo "gpu_check: installing $missing"
    if [ -d .whl ]; then
        "$PY" -m pip install -q --no-index --no-deps --target /tmp/copybot-site .whl/*.whl
        export PYTHONPATH="/tmp/copybot-site${PYTHONPATH:+:$PYTHONPATH}"
    else
        "$PY" -m pip install -q $missing
    fi
fi

export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
exec timeout 470 "$PY" -W ignore -m benchmarks.gpu_check "$@"
