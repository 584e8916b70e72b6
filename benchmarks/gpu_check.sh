#!/usr/bin/env bash
# The whole GPU check for a lent device machine, in one command (see benchmarks/RESULTS.md).
# Installs the carried wheels (.whl/: open_clip_torch, ftfy, wcwidth, webdataset,
# braceexpand; the device image has torch, timm, pillow, pyarrow, psutil), then runs the
# training throughput sweep (issue 4: the device-resident ceiling for compile, compile +
# fused AdamW and CUDA graphs, then real data and open_clip's synthetic loader for the
# fastest), starting no case after TRAIN_BUDGET_S seconds (~8 min in all), and, with
# RUN_EVAL=1, the retrieval benchmark on CUDA (issue 5, recorded already).
# Wheels, made here (git ignores .whl/):
#   .venv/bin/pip download --no-deps -d .whl open_clip_torch==3.3.0 ftfy "webdataset<=0.2.86" braceexpand wcwidth
# Usage there:  bash benchmarks/gpu_check.sh   (results also under $OUT when set); with the
# device tool: command "bash benchmarks/gpu_check.sh", carry [".whl"], timeout_s ~560.
# Test it here first:  TRAIN_ARGS="--cpu --workers 1 --epochs 2 --steps 5 --variants eager,fused" \
#                      PYTHON=.venv/bin/python bash benchmarks/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
  $PYTHON -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null | tee "$OUT/gpu.txt"
$PYTHON -c "import torch, open_clip; print('torch', torch.__version__, 'open_clip', open_clip.__version__)"
$PYTHON benchmarks/train_throughput.py ${TRAIN_ARGS:---steps 50 --epochs 3} --budget-s "${TRAIN_BUDGET_S:-380}" --case-timeout-s 200 \
  --json "$OUT/train_throughput.json" 2>"$OUT/train_throughput.err" | tee "$OUT/train_throughput.log"
tail -40 "$OUT/train_throughput.err"
if [ "${RUN_EVAL:-0}" = 1 ]; then
  $PYTHON benchmarks/evaluate.py ${EVAL_ARGS:---device cuda} 2>&1 | tee "$OUT/evaluate.log" | tail -14
fi
