"""Every benchmark in one run, each against its baseline measured in the same run; writes results/bench.md.

    python bench/suite.py                    # on the CPU: DAVIS-sized propagation, a small slice of the DAVIS-val-sized run
    python bench/suite.py --device cuda      # full sizes (bench/gpu_check.sh runs it with the notebooks' GPU cells)

The benchmarks run one after the other, each in its own process, and write their JSON to
results/bench/<name>-<device>.json; their printed output goes into results/bench.md, after a header with the
machine, the device and the commit, and before a table of the targets they are measured against. The report is
rewritten after each benchmark, so a run stopped midway keeps what it measured. On CUDA the GPU's own targets run
first (the DAVIS-val-sized evaluation, then the training step), because a GPU's time is short.
- sinkhorn: corrmine's two Sinkhorn methods against every POT solver that reaches the same plan;
- propagation: label propagation against the dense masked reference at DAVIS size, on random features and on
  a real video's, and DAVIS scoring against the toolkit's way of computing F;
- train_step: a training step at the paper's clip shape, in parts (forward, mining, loss and backward,
  optimiser), and the data pipeline that feeds it: clips per second per worker, with the training loop's
  workers alone, and the time a short loop waits for data;
- davis_val: the one evaluation call on a DAVIS-val-sized stand-in, features included;
- compile: torch.compile against eager for the encoder's forward and backward and for the log-domain Sinkhorn;
- data-pipeline: one data-loading worker's clips per second from 720p JPEG frames, from the frame store that
  corrmine-prep makes of them, and from .mp4 files with and without seeking.
"""
import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

from corrmine.core import get_device, run_info

ROOT = Path(__file__).resolve().parent.parent

BENCHES = {  # name: (script, arguments on the CPU, arguments on CUDA)
    "sinkhorn": ("sinkhorn.py", ["--repeat", "1"], []),
    "propagation": ("propagation.py", [], []),
    "train-step": ("train_step.py", ["--batch", "2"], ["--batch", "24"]),
    "davis-val": ("davis_val.py", ["--sequences", "2", "--frames", "6", "--workers", "2"], []),
    "compile": ("compile.py", ["--crop", "128"], ["--batch", "8"]),
    "data-pipeline": ("data_pipeline.py", ["--videos", "4", "--clips", "16"], ["--videos", "8", "--clips", "48"]),
}
CUDA_ORDER = ["davis-val", "train-step", "propagation", "sinkhorn", "compile", "data-pipeline"]  # the GPU's targets first: a GPU's time is short


def targets(res: dict, dev: str) -> list[tuple[str, str, str, bool]]:
    "The figures the benchmarks must reach: (what, target, measured, met)."
    out = []
    if p := res.get("propagation"):
        real, rnd = p.get("real"), p.get("random")
        main = real or rnd                                  # the speed targets: on real features where they were measured
        s, r, what = main["corrmine"]["seconds_per_frame"], main["speed_ratio"], "real" if real else "random"
        if dev == "cpu":
            out.append((f"propagation at DAVIS size, s per frame with a full context ({what} features)", "<= 0.7", f"{s:.2f}", s <= 0.7))
            out.append((f"propagation against the dense masked reference, full context ({what} features)", ">= 15x", f"{r:.1f}x", r >= 15))
            if "davis_val_ratio" in main:
                dv = main["davis_val_ratio"]
                out.append((f"the same per frame over DAVIS-2017 val's sequence lengths, whose first 20 frames hold copies of frame 0 "
                            f"({what} features)", ">= 15x",
                            f"{dv:.1f}x ({main['corrmine']['davis_val_seconds_per_frame']:.2f} s per frame)", dv >= 15))
            if real and rnd:
                out.append(("the same on random features, full context", "(for information)",
                            f"{rnd['speed_ratio']:.1f}x ({rnd['corrmine']['seconds_per_frame']:.2f} s per frame)", None))
            if "floor" in p:
                out.append(("the same at the floor of any exact method, full context (frame 0's product and the in-radius products, no top-k)",
                            "(for information)", f"{p['floor_ratio']:.1f}x ({p['floor']['seconds_per_frame']:.2f} s per frame)", None))
            k = p["toolkit_method_f_seconds"] / p["davis_scoring_seconds_50_frames"]
            out.append(("DAVIS scoring against the toolkit's way", ">= 5x", f"{k:.1f}x", k >= 5))
        else:                                                # on CUDA: the runs, against the dense reference and the tiles
            out.append((f"propagation at DAVIS size on {dev}, full context ({what} features): the runs against the dense "
                        "reference", "(for information)", f"{r:.1f}x ({s * 1e3:.1f} ms per frame)", None))
            if "tiles" in main:
                t = main["tiles"]["seconds_per_frame"]
                out.append((f"the same: the runs against the CPU's tiles on {dev}", "(for information)",
                            f"{t / s:.1f}x (tiles: {t * 1e3:.1f} ms per frame)", None))
        for name, row in (("random", rnd), ("real", real)):
            if row is None: continue
            out.append((f"propagation's top-k scores of every query and frame against the dense reference ({name} features)",
                        "identical", f"max abs. difference {row['max_score_difference']:.1e}", row["max_score_difference"] < 1e-5))
            out.append((f"propagation's output against the dense reference ({name} features; labels may differ where keys "
                        "of different labels tie)", "(for information)",
                        f"{row['cells_differing']} of {row['cells']} cells differ, same label in {row['label_agreement']:.3%}", None))
    if d := res.get("data-pipeline"):
        c = d["clips_per_s"]
        base, store = c["720p JPEG frames (the baseline)"], c["frame store, short side 256 (corrmine-prep)"]
        out.append(("one data-loading worker's clips per second from the frame store (short side 256) against 720p JPEG frames",
                    ">= 4x", f"{store / base:.1f}x ({store:.1f} clips/s)", store / base >= 4))
    if s := res.get("sinkhorn"):
        for name, row in s["regimes"].items():
            ours = row["corrmine_scaling"]["s"]
            pots = {k[4:]: v for k, v in row.items() if k.startswith("pot_")}
            got = ", ".join(f"{k} {v['s'] / ours:.1f}x" for k, v in pots.items()) or "POT not installed"
            if name.startswith("converged"):                # there every solver reaches the same plan, or it does not count
                same = [v for v in pots.values() if v["finite"] and v["max_scaled_plan_diff"] < 1e-3]
                out.append((f"Sinkhorn, {name}: corrmine's scaling method against each POT solver that reaches its plan",
                            "faster", got, all(v["s"] > ours for v in same) if same else None))
            else:                                            # a fixed iteration count: POT's plan is half a step off
                out.append((f"Sinkhorn, {name}: corrmine's scaling method against POT", "(for information)", got, None))
    if t := res.get("train-step"):
        share, gpu = t["mining_share"], dev == "cuda"
        out.append((f"mining's share of a training step at the paper's clip shape (forward, mining, loss + backward, Adam; "
                     f"{t['ot_solver']} Sinkhorn, batch {t['batch']})", "<= 10%" if gpu else "(a GPU target)", f"{share:.1%}",
                    share <= 0.10 if gpu else None))
        if "pipeline" in t:
            r, w = t["pipeline_over_step"], t["workers"]
            out.append((f"the data pipeline with {w} workers against the training step (clips per second)",
                        ">= 1x" if gpu else "(a GPU target)",
                        f"{r:.2f}x ({t['pipeline']['clips_per_s']:.1f} against {t['batch'] / t['step']:.1f} clips/s)", r >= 1 if gpu else None))
            out.append((f"a short training loop with {w} workers: time spent waiting for data", "(for information)",
                        f"{t['loop']['wait_share']:.1%} of {t['loop']['steps']} steps", None))
    if d := res.get("davis-val"):
        if d["frames"] == 1999:
            out.append(("DAVIS-val-sized evaluation, features included", "< 60 s", f"{d['total_s']:.0f} s", d["total_s"] < 60))
    if c := res.get("compile"):
        for part, what in (("encoder", "the encoder's forward + backward"), ("sinkhorn", "the log-domain Sinkhorn")):
            r = c[part]
            out.append((f"torch.compile against eager: {what}", "(where it pays)",
                        f"{r['speedup']:.2f}x (compiling: {r['compile_s']:.0f} s)", None))
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--only", nargs="*", choices=sorted(BENCHES), help="run only these")
    p.add_argument("--md", default=str(ROOT / "results" / "bench.md"))
    a = p.parse_args()
    dev = get_device(a.device)
    info = run_info(dev)
    sections, res = [], {}
    order = CUDA_ORDER if dev.type == "cuda" else list(BENCHES)
    kept = earlier_sections(Path(a.md), dev.type, set(a.only)) if a.only else []    # --only: the others' last figures stay
    for name, *_ in kept:
        js = ROOT / "results" / "bench" / f"{name}-{dev.type}.json"
        if js.is_file(): res[name] = json.loads(js.read_text())
    for name in order:
        if a.only and name not in a.only: continue
        script, cpu_args, cuda_args = BENCHES[name]
        js = ROOT / "results" / "bench" / f"{name}-{dev.type}.json"
        cmd = [sys.executable, str(ROOT / "bench" / script), "--device", str(dev), "--out", str(js),
               *(cuda_args if dev.type == "cuda" else cpu_args)]
        print(f"=== {name}: {' '.join(cmd[1:])}", flush=True)
        t0 = time.perf_counter()
        run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        print(run.stdout, end="", flush=True)
        if run.returncode != 0:
            print(run.stderr[-3000:], file=sys.stderr)
            sections.append((name, f"FAILED (exit {run.returncode})\n{run.stderr[-1500:]}", time.perf_counter() - t0))
        else:
            res[name] = json.loads(js.read_text())
            sections.append((name, run.stdout.rstrip(), time.perf_counter() - t0))
        write_report(Path(a.md), dev.type, info, res, sections, [n for n in order if (not a.only or n in a.only)][len(sections):], kept)
    print(f"[bench] wrote {a.md}")


def earlier_sections(md: Path, dev: str, rerun: set[str]) -> list[tuple[str, str, float, str]]:
    "The sections of an earlier report on the same device that this run does not redo: (name, text, seconds, how made)."
    if not md.is_file(): return []
    text = md.read_text()
    if not text.startswith(f"# Benchmarks ({dev})"): return []
    made = re.search(r"`python bench/suite\.py[^`]*` on .*?(?=\. Every ratio|\.\n)", text)    # the first: the oldest sections'
    how = made.group(0) if made else "an earlier run"
    out = []
    for m in re.finditer(r"^## (\S+) \((\d+) s\)\n\n```\n(.*?)\n```", text, re.M | re.S):
        if m.group(1) not in rerun and m.group(1) in BENCHES: out.append((m.group(1), m.group(3), float(m.group(2)), how))
    return out


def write_report(md: Path, dev: str, info: dict, res: dict, sections: list, pending: list[str], kept: list = ()):
    """results/bench.md from the benchmarks run so far (rewritten after each one, so that a run stopped midway leaves its
    figures); with `kept` (a run with --only), the other benchmarks' sections of the earlier report, saying when they were made."""
    made = (f"`python bench/suite.py --device {dev}{' --only ' + ' '.join(n for n, *_ in sections) if kept else ''}` on "
            f"{info['gpu'] or info['cpu']} ({info['cpus']} CPUs), torch {info['torch']}, at commit "
            f"{(info['commit'] or 'unknown')[:7]}{' with uncommitted changes' if info['dirty'] else ''}, {info['time']}")
    lines = [f"# Benchmarks ({dev})", "",
             (f"Sections {', '.join(n for n, *_ in kept)}: {kept[0][3]}.\n\nSections {', '.join(n for n, *_ in sections)}: " if kept else "")
             + f"{made}. Every ratio is measured in the same run as its baseline; the JSON of each benchmark is in "
             f"`results/bench/<name>-{dev}.json`.", "", "| target | wanted | measured | met |", "| --- | --- | --- | --- |"]
    order = list(BENCHES)
    sections = sorted([*[(n, t, s) for n, t, s, _ in kept], *sections], key=lambda x: order.index(x[0]))
    for what, want, got, met in targets(res, dev):
        lines.append(f"| {what} | {want} | {got} | {'yes' if met else 'no' if met is not None else '-'} |")
    if pending: lines += ["", f"Not run yet (the run was stopped before them, or is still going): {', '.join(pending)}."]
    if dev == "cpu":
        lines += ["", "GPU figures: `bench/gpu_check.sh` on one GPU; the last run is in `results/bench/gpu/README.md`."]
    for name, text, secs in sections:
        lines += ["", f"## {name} ({secs:.0f} s)", "", "```", text, "```"]
    tmp = md.with_suffix(".md.tmp"); tmp.write_text("\n".join(lines) + "\n"); tmp.replace(md)

if __name__ == "__main__":
    main()
