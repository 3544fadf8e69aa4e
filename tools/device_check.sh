#!/usr/bin/env bash
# The device check: what to run once on a machine with a GPU, as one call (about 5 minutes on an H100):
#     run(command="bash tools/device_check.sh", timeout_s=540)
# It needs only the image's own python3 (torch, torchvision, scipy, scikit-image are there; corrmine goes on
# PYTHONPATH, nothing is installed). Results go to $OUT (they come back to this machine) or results/bench:
#   device.txt                          the GPU
#   propagation-agreement-cuda.txt      label propagation on CUDA against the dense reference on CUDA and on the CPU
#   propagation-cuda.{json,txt}         bench/propagation.py --device cuda
#   sinkhorn-cuda.{json,txt}            bench/sinkhorn.py --device cuda, when POT is importable (carry its wheel)
# Copy the files you keep into results/bench/, and quote their numbers from there.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
out="${OUT:-results/bench}"; mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/device.txt"
python3 - <<'PY' 2>&1 | tee "$out/propagation-agreement-cuda.txt"
import time, torch, torch.nn.functional as F
from corrmine.core import EvalConfig, get_device
from corrmine.propagation import propagate, propagate_dense
g = torch.Generator().manual_seed(0)
feats = F.normalize(torch.randn(23, 256, 60, 107, generator=g), dim=1)
lab = torch.softmax(3 * torch.randn(4, 60, 107, generator=g), 0)
cfg = EvalConfig()
dev = get_device("auto")
cpu = propagate(feats[:4], lab, cfg)
fc, lc = feats.to(dev), lab.to(dev)
propagate(fc[:3], lc, cfg); sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None); sync()
t0 = time.perf_counter(); fast = propagate(fc, lc, cfg); sync(); dt = time.perf_counter() - t0
dense = propagate_dense(fc, lc, cfg)
print(f"{dev}, 60x107 grid, 256-d, 22 propagated frames: {dt / 22 * 1000:.1f} ms/frame; "
      f"max |fast - dense| on {dev} {(fast - dense).abs().max().item():.1e}; "
      f"max |{dev} - CPU| over the first 3 frames {(fast[:4].cpu() - cpu).abs().max().item():.1e}")
PY
python3 bench/propagation.py --device cuda --out "$out/propagation-cuda.json" 2>&1 | tee "$out/propagation-cuda.txt"
if python3 -c "import ot" 2>/dev/null; then
  python3 bench/sinkhorn.py --device cuda --out "$out/sinkhorn-cuda.json" 2>&1 | tee "$out/sinkhorn-cuda.txt"
else
  echo "POT is not importable here: bench/sinkhorn.py skipped (carry POT's wheel, see the device tool's README)"
fi
# a training step at the paper's clip shape on CUDA: the mining's share, next to the network's (needs the benchmark's
# training videos: corrmine-synth --preset bench --out data/bench, or any folder of videos through --data)
if [ -d data/bench/YTVOS/train/JPEGImages ]; then
  python3 bench/train_step.py --device cuda --batch 24 --out "$out/train-step-cuda.json" 2>&1 | tee "$out/train-step-cuda.txt"
else
  echo "data/bench is missing: bench/train_step.py skipped"
fi
