#!/usr/bin/env bash
# The GPU check: everything that needs a CUDA GPU, in one script of a few minutes on one H100/H200.
#
#   bash bench/gpu_check.sh                 # writes its log and JSON into $OUT (default runs/gpu-check)
#
# It expects a python3 that holds torch with CUDA, and the embedded benchmark's DAVIS/ and YTVOS/ under
# data/bench (it generates the benchmark when they are missing, which takes minutes). It installs the project
# (editable, no dependencies) and, when a folder .whl/ holds wheels, those first: nbdev and its runner, for the
# notebooks. In order of importance, each step with its own time limit, skipped once the budget is spent:
#   1. the notebooks' `#| gpu` cells (bench/gpu_cells.py), with the cells before them;
#   2. the benchmark suite on CUDA at full sizes (bench/suite.py), the GPU's targets first: the DAVIS-val-sized
#      evaluation (1999 frames at 480p, features included), a training step at the paper's clip shape in parts
#      with the data pipeline that feeds it, propagation at DAVIS size against the dense reference and the CPU's
#      tiles, Sinkhorn, torch.compile against eager; its report (rewritten after each benchmark) and JSON come
#      back in $OUT;
#   3. the training loop at the paper's settings under torchrun (DDP, NCCL, bf16, 8 workers) for 60 steps on the
#      embedded benchmark's training videos: clips/s from its log, GPU memory sampled by nvidia-smi;
#   4. the synthetic-cpu preset's 1000 steps on the GPU (the reproduction's main runs);
#   5. the paper profile's path as the CPU tries it shortened (bash reproduce.sh --profile paper --steps N on
#      corrmine-synth's real-res data), here at the preset's own batch, workers and devices, Table 1's runs for 200
#      steps each: the frame store, DDP training with validation and kept checkpoints, evaluation at 480p, the tables.
# On one H200 its parts took about 8 minutes together, measured before they were gathered into the suite
# (results/bench/gpu/README.md); the DAVIS-val-sized evaluation alone took about 4 of them, before propagation
# had a GPU path and the scoring ran in threads.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gpu-check}; mkdir -p "$OUT"
BUDGET=${BUDGET:-420}                      # seconds; a step starts only while this much time has not passed
# STEPS="gpu-cells suite" runs only the steps named
export PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore
start=$(date +%s)
summary=()

step() {  # step NAME LIMIT_S COMMAND...: run it under a time limit, unless the budget is spent
    local name=$1 limit=$2; shift 2
    local t0=$(date +%s)
    if [ -n "${STEPS:-}" ] && [[ " $STEPS " != *" $name "* ]]; then return; fi
    if (( t0 - start >= BUDGET )); then summary+=("$name: skipped, budget spent"); return; fi
    echo; echo "=== $name (limit ${limit} s)"
    timeout "$limit" "$@"; local rc=$?
    local took=$(( $(date +%s) - t0 ))
    summary+=("$name: $([ $rc = 0 ] && echo ok || echo "FAILED rc=$rc") in ${took} s")
}

echo "=== machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"
nproc
if compgen -G ".whl/*.whl" > /dev/null; then python3 -m pip install -q --no-index --no-deps --no-compile .whl/*.whl || exit 1; fi
bin=$(python3 -c "import sys, os; print(os.path.dirname(sys.executable))"); export PATH="$bin:$PATH"
if ! python3 -m pip install -q --no-index --no-deps --no-build-isolation -e .; then
    echo "editable install failed; using PYTHONPATH and wrappers for the commands"
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"; mkdir -p /tmp/corrmine-bin; export PATH="/tmp/corrmine-bin:$PATH"
    for cmd in synth:cli:synth_cli train:cli:train_cli prep:cli:prep_cli reproduce:cli:reproduce_cli; do IFS=: read -r name mod fn <<< "$cmd"
        printf '#!/bin/sh\nexec python3 -c "import sys; from corrmine.%s import %s; sys.exit(%s())" "$@"\n' "$mod" "$fn" "$fn" > "/tmp/corrmine-bin/corrmine-$name"
        chmod +x "/tmp/corrmine-bin/corrmine-$name"; done
fi
[ -d data/bench/YTVOS ] || corrmine-synth --preset bench --out data/bench

step "gpu-cells" 200 python3 bench/gpu_cells.py

paper() {
    rm -rf runs/gpu-paper
    nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv,noheader,nounits -lms 500 > "$OUT/paper-gpu-samples.csv" &
    local smi=$!
    torchrun --standalone --nproc_per_node=1 --no-python corrmine-train --preset paper \
        train.data=data/bench/YTVOS/train/JPEGImages train.out=runs/gpu-paper train.steps=60 train.warmup_steps=10 \
        train.log_every=10 train.ckpt_every=60 train.probe= train.keep_every=0     # the loop alone: no validation at its end
    local rc=$?
    kill $smi
    cp runs/gpu-paper/log.jsonl "$OUT/paper-log.jsonl" 2>/dev/null
    python3 - "$OUT/paper-gpu-samples.csv" runs/gpu-paper/log.jsonl <<'EOF'
import json, sys
mem = [float(l.split(",")[0]) for l in open(sys.argv[1]) if l.strip()]
util = [float(l.split(",")[1]) for l in open(sys.argv[1]) if l.strip()]
log = [json.loads(l) for l in open(sys.argv[2])]
cps = [r["clips_per_s"] for r in log if "clips_per_s" in r][1:]   # the first window holds the start-up
print(f"paper settings, 60 steps: clips/s {sum(cps) / max(len(cps), 1):.1f} (steps 20-60); GPU memory used at most "
      f"{max(mem) / 1024:.1f} GiB; GPU utilisation mean {sum(util) / len(util):.0f}% over the run")
EOF
    return $rc
}
export -f paper; export OUT
step "suite" 330 python3 bench/suite.py --device cuda --md "$OUT/bench-cuda.md"
for f in results/bench/*-cuda.json; do [ -f "$f" ] && cp "$f" "$OUT/"; done
step "paper-torchrun" 150 bash -c paper
step "synthetic-1000" 150 corrmine-train --preset synthetic-cpu device=cuda train.probe= train.out=runs/gpu-synthetic train.workers=8

paper_path() {
    [ -d data/real-res ] || corrmine-synth --preset real-res --out data/real-res || return 1
    corrmine-prep data/real-res/YTVOS/train/JPEGImages --out data/real-res/YTVOS/train/JPEGImages_s256 || return 1
    corrmine-reproduce --profile paper --data-root data/real-res --steps 200 --only 1 --seeds 0 \
        --results "$OUT/paper-path" --runs runs/gpu-paper-path
}
export -f paper_path
step "paper-path" 240 bash -c paper_path

echo; echo "=== summary ($(( $(date +%s) - start )) s)"
printf '%s\n' "${summary[@]}"
