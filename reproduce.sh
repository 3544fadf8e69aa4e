#!/usr/bin/env bash
# Regenerates everything under results/. Sets up .venv on the first run.
#
#   bash reproduce.sh                       # the synthetic profile: the embedded benchmark on this machine's CPU (or GPU)
#   bash reproduce.sh --dry-run             # what would run, what is already done, and how long the rest should take
#   bash reproduce.sh --only 3              # only the runs behind Table 3
#   bash reproduce.sh --verify --only 1     # make Table 1's runs again in runs/verify and compare them with the records
#   bash reproduce.sh --profile paper --data-root /data    # real DAVIS, JHMDB, VIP and YouTube-VOS, on GPUs
#   corrmine-synth --preset real-res --out data/real-res    # the paper profile's whole path on this machine, in minutes:
#   bash reproduce.sh --profile paper --data-root data/real-res --steps 4 --nproc 2 --seeds 0
#
# 1. generates the embedded benchmark (corrmine-synth --preset bench) into data/bench, or keeps it when it is
#    already there with the same configuration (about a minute on 2 cores); the paper profile validates on its
#    select/ videos, and trains on YouTube-VOS's frames resized once to a short side of 256 (corrmine-prep, into
#    YTVOS/train/JPEGImages_s256 beside the originals; resumable, and kept once made);
# 2. executes every method notebook with papermill (executed copies go to results/notebooks/, which is not
#    tracked) and writes their figures to results/figures/, with the provenance of the run in
#    results/figures/run-info.json (synthetic profile only; skipped with --only or --verify, and when nothing they
#    read has changed since);
# 3. runs corrmine-reproduce: every experiment of the profile (the parameterized notebooks of nbs/experiments:
#    the baselines, training and evaluation, the precision of the mining), each writing one JSON record under
#    results/records/<profile>/, then Tables 1-5 under results/tables/<profile>/. A finished run is not redone,
#    a failed one runs again; extra arguments go to corrmine-reproduce (see corrmine-reproduce --help).
set -euo pipefail
cd "$(dirname "$0")"
source tools/env.sh

profile=synthetic; only=""; dry=0; verify=0; data_root=""
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    case "${args[i]}" in
        --profile) profile="${args[i+1]:-}";;
        --profile=*) profile="${args[i]#*=}";;
        --data-root) data_root="${args[i+1]:-}";;
        --data-root=*) data_root="${args[i]#*=}";;
        --only) only="${args[i+1]:-}";;
        --only=*) only="${args[i]#*=}";;
        --dry-run) dry=1;;
        --verify) verify=1;;
    esac
done
if [ "$dry" = 1 ]; then exec corrmine-reproduce "$@"; fi

# the embedded benchmark: the synthetic profile's data, and the paper profile's validation videos (data/bench/select)
echo "[corrmine] the embedded benchmark (data/bench)"
corrmine-synth --preset bench --out data/bench --replace
src="$data_root/YTVOS/train/JPEGImages"
if [ "$profile" = paper ] && [ -n "$data_root" ] && [ -d "$src" ]; then
    echo "[corrmine] the training frames at a short side of 256 (${src}_s256)"
    corrmine-prep "$src" --out "${src}_s256"
fi
corrmine-reproduce "$@" --check        # the paper profile refuses here, before any experiment runs, if its data or GPUs are missing

if [ "$profile" = synthetic ] && [ -z "$only" ] && [ "$verify" = 0 ]; then        # --verify leaves the committed figures alone
    figs="$PWD/results/figures"
    mkdir -p results/notebooks "$figs"
    nbs=(nbs/[0-9]*.ipynb)
    echo "[corrmine] executing ${#nbs[@]} method notebooks with papermill"
    python tools/run_nbs.py --out-dir results/notebooks --fig-dir "$figs" --stamp "$figs/run-info.json" "${nbs[@]}"
    echo "[corrmine] $(ls "$figs"/*.png | wc -l) figures in results/figures/"
fi

echo "[corrmine] experiments and tables ($profile profile)"
corrmine-reproduce "$@"
