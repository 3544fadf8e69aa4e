#!/usr/bin/env bash
# Regenerates everything under results/ from the notebooks. Sets up .venv on the first run.
#
# Today:
# 1. generates the embedded benchmark (corrmine-synth --preset bench) into data/bench, or keeps it when
#    it is already there with the same configuration (about a minute on 2 cores);
# 2. executes every method notebook with papermill (executed copies go to results/notebooks/, which is
#    not tracked) and writes their figures to results/figures/, with the provenance of the run in
#    results/figures/run-info.json;
# 3. runs the experiment notebooks in nbs/experiments/: today the baselines of the embedded benchmark
#    (copy frame 0, raw colour, random ResNet-18 over 3 seeds with its BatchNorm statistics untouched and
#    re-estimated, ImageNet when cached, the ground-truth oracle) on the DAVIS, JHMDB and VIP tasks and on
#    matching accuracy, into results/baselines/.
set -euo pipefail
cd "$(dirname "$0")"
source tools/env.sh

echo "[corrmine] the embedded benchmark (data/bench)"
corrmine-synth --preset bench --out data/bench --replace

figs="$PWD/results/figures"
mkdir -p results/notebooks "$figs"
nbs=(nbs/[0-9]*.ipynb)
echo "[corrmine] executing ${#nbs[@]} method notebooks with papermill"
python tools/run_nbs.py --out-dir results/notebooks --fig-dir "$figs" "${nbs[@]}"
echo "[corrmine] experiments: the baselines of the embedded benchmark (results/baselines)"
python tools/run_nbs.py --out-dir results/notebooks/experiments nbs/experiments/baselines.ipynb
python -c 'from corrmine.core import run_info, write_json
write_json("results/figures/run-info.json", dict(run_info("cpu"), what="figures of the method notebooks, by reproduce.sh"))'
echo "[corrmine] done: $(ls "$figs"/*.png | wc -l) figures in results/figures/"
