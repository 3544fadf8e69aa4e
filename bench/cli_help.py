"""How long each command takes to print its --help, against a bare Python start in the same run.

    python bench/cli_help.py [--repeat 3] [--out results/bench/cli-help-cpu.txt]

The target is well under a second for `corrmine-eval --help`: the console scripts read their arguments with the
parsers of `corrmine.cli`, which import nothing heavy, and import torch only after that. The ratio against `python -c pass` is what to compare between machines.
"""
import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path


def best_of(argv: list[str], repeat: int) -> float:
    "The fastest of `repeat` wall times of a command, in seconds."
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter(); subprocess.run(argv, capture_output=True, check=True); out.append(time.perf_counter() - t0)
    return min(out)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--out", help="also write the table here")
    a = p.parse_args()
    bare = best_of([sys.executable, "-c", "pass"], a.repeat)
    lines = [f"python -c pass: {bare:.2f} s (the baseline)"]
    for cmd, *args in (["corrmine-eval"], ["corrmine-eval", "davis"], ["corrmine-train"], ["corrmine-synth"], ["corrmine-reproduce"], ["corrmine-prep"]):
        exe = shutil.which(cmd) or str(Path(sys.executable).parent / cmd)
        t = best_of([exe, *args, "--help"], a.repeat)
        lines.append(f"{' '.join([cmd, *args])} --help: {t:.2f} s, {t / bare:.1f}x the baseline{'' if t < 1 else ' (target: under 1 s)'}")
    print("\n".join(lines))
    if a.out: Path(a.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
