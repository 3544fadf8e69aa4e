"""Run the notebooks that hold `#| gpu` cells, those cells forced, and print what the `#| gpu` cells print.

    python bench/gpu_cells.py                 # every notebook in nbs/ with a `#| gpu` cell
    python bench/gpu_cells.py nbs/21_train.ipynb

Each notebook runs as the test suite runs it (nbdev's `test_nb`, cells tagged `#| slow` skipped), except that the
`#| gpu` cells run too. The test suite shows nothing of a passing notebook; this prints the outputs of its `#| gpu`
cells, which hold the numbers worth keeping (time, throughput, GPU memory). Exits non-zero if a notebook fails.
"""
import sys
from pathlib import Path

import nbdev.test as nbtest


class Shell(nbtest.CaptureShell):
    "nbdev's shell, printing the stream outputs of the `#| gpu` cells after the notebook has run."
    def run_all(self, nb, *args, **kwargs):
        try: return super().run_all(nb, *args, **kwargs)
        finally:
            for c in nb.cells:
                if c.cell_type == "code" and "gpu" in (getattr(c, "directives_", None) or {}):
                    for o in c.get("outputs", []):
                        text = o.get("text") or o.get("data", {}).get("text/plain", "")
                        print("  |", "".join(text).rstrip().replace("\n", "\n  | "))


def main():
    root = Path(__file__).resolve().parent.parent
    nbs = [Path(f).resolve() for f in sys.argv[1:]] or sorted(f for f in (root / "nbs").glob("*.ipynb") if "#| gpu" in f.read_text())
    nbtest.CaptureShell = Shell
    failed = []
    for nb in nbs:
        print(f"{nb.name}: running, `#| gpu` cells forced", flush=True)
        ok, secs = nbtest.test_nb(nb, skip_flags=["slow", "gpu"], force_flags=["gpu"], showerr=True)
        print(f"{nb.name}: {'passed' if ok else 'FAILED'} in {secs:.0f} s", flush=True)
        if not ok: failed.append(nb.name)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
