"""Execute notebooks with papermill, honouring nbdev's test flags.

    python tools/run_nbs.py --out-dir results/notebooks --fig-dir results/figures nbs/0*.ipynb
    python tools/run_nbs.py --in-place nbs/03_affinity.ipynb        # refresh the committed outputs

papermill runs every code cell; nbdev skips cells tagged with one of `settings.ini`'s `tst_flags`
(`#| slow`, `#| gpu`) unless forced. This runner does the same: flagged cells are turned into raw
cells for the run and restored (unexecuted) afterwards, so the written notebook keeps them. `gpu` is
forced automatically when CUDA is available; `--flags slow` forces more. Outputs are written to a
temporary file and renamed.

With `--stamp FILE` the run is skipped when FILE records the same inputs (the notebooks, the `corrmine`
package, the embedded benchmark's `meta.json`, the training logs that `21_train` plots, torch and the device)
as now; after a run, FILE gets the provenance of the run, those inputs and the figures written. So a second `bash reproduce.sh` does not execute them
again, unless an executed copy or a recorded figure has gone missing since.
"""
import argparse
import configparser
import hashlib
import json
import sys
import tempfile
from pathlib import Path

import nbformat
import papermill
import torch

from corrmine.core import atomic_path, run_info, write_json

ROOT = Path(__file__).resolve().parents[1]


def cell_flags(cell) -> set[str]:
    "The nbdev directives of a code cell (the `#| word` lines at its top)."
    flags = set()
    for line in cell.source.splitlines():
        if not line.startswith("#|"): break
        flags.update(line[2:].split())
    return flags


def run(nb_path: Path, out_path: Path, skip: set[str], params: dict, progress: bool) -> list[int]:
    "Execute one notebook; returns the indices of the cells that were skipped."
    nb = nbformat.read(nb_path, as_version=4)
    skipped = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and cell_flags(c) & skip]
    for i in skipped: nb.cells[i].cell_type = "raw"
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / nb_path.name
        for i in skipped:
            nb.cells[i].pop("outputs", None); nb.cells[i].pop("execution_count", None)
        nbformat.write(nb, src)
        done = papermill.execute_notebook(str(src), str(Path(d) / "out.ipynb"), parameters=params or None,
                                          cwd=str(nb_path.parent), kernel_name="python3", progress_bar=progress)
    for i in skipped:
        c = done.cells[i if not params else _shift(done, i)]
        c.cell_type, c.outputs, c.execution_count = "code", [], None
    for c in done.cells:                                    # papermill adds empty tag lists
        if c.metadata.get("tags") == []: del c.metadata["tags"]
    with atomic_path(out_path) as tmp:
        nbformat.write(done, str(tmp))
    return skipped


def _shift(nb, i):
    "papermill inserts one `injected-parameters` cell after the `parameters` cell; map old indices to new."
    inj = next(k for k, c in enumerate(nb.cells) if "injected-parameters" in c.metadata.get("tags", []))
    return i + 1 if i >= inj else i


def inputs(notebooks: list[Path], flags: set[str]) -> dict:
    "What the executed notebooks depend on, as SHA-256 prefixes: a changed input means they must run again."
    def digest(path: Path) -> str: return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    meta = ROOT / "data" / "bench" / "meta.json"
    return dict(notebooks={str(nb): digest(nb) for nb in notebooks},
                package={p.name: digest(p) for p in sorted((ROOT / "corrmine").glob("*.py"))},
                benchmark=digest(meta) if meta.exists() else None,
                results={str(p.relative_to(ROOT)): digest(p) for p in sorted((ROOT / "results" / "train").glob("log-seed*.jsonl"))},
                torch=torch.__version__, cuda=torch.cuda.is_available(), skipped_flags=sorted(flags))


def missing_outputs(a, figures: list[str]) -> list[Path]:
    "The executed copies and the recorded figures that are not there."
    paths = [] if a.in_place else [a.out_dir / nb.name for nb in a.notebooks]
    paths += [a.fig_dir / f for f in figures] if a.fig_dir else []
    return [p for p in paths if not p.exists()]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("notebooks", nargs="+", type=Path)
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--in-place", action="store_true", help="overwrite each notebook with its executed copy")
    where.add_argument("--out-dir", type=Path, help="write executed copies here")
    p.add_argument("--fig-dir", type=Path, help="passed to the notebooks' `fig_dir` parameter")
    p.add_argument("--flags", default="", help="nbdev flags to force, e.g. 'slow'")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--stamp", type=Path, help="skip when this file records the same inputs; write it after the run")
    a = p.parse_args()

    cfg = configparser.ConfigParser(); cfg.read(ROOT / "settings.ini")
    skip = set(cfg["DEFAULT"].get("tst_flags", "").split()) - set(a.flags.split())
    if torch.cuda.is_available(): skip.discard("gpu")
    params = {"fig_dir": str(a.fig_dir.resolve())} if a.fig_dir else {}
    now = inputs(a.notebooks, skip) if a.stamp else None
    if a.stamp and a.stamp.exists():
        old = json.loads(a.stamp.read_text())
        missing = missing_outputs(a, old.get("figures", []))
        if old.get("inputs") == now and not missing:
            print(f"[corrmine] {len(a.notebooks)} notebooks unchanged since {a.stamp}: not executed again", file=sys.stderr)
            return
        if old.get("inputs") == now:
            print(f"[corrmine] inputs unchanged, but {len(missing)} output(s) missing (e.g. {missing[0]}): executing again", file=sys.stderr)
    for nb in a.notebooks:
        out = nb if a.in_place else a.out_dir / nb.name
        print(f"[corrmine] {nb}", file=sys.stderr, flush=True)
        skipped = run(nb.resolve(), out.resolve(), skip, params, not a.no_progress)
        if skipped: print(f"[corrmine]   skipped {len(skipped)} cell(s) flagged {sorted(skip)}", file=sys.stderr)
    if a.stamp:
        figures = sorted(p.name for p in a.fig_dir.glob("*.png")) if a.fig_dir else []
        write_json(a.stamp, dict(run_info("cuda" if now["cuda"] else "cpu"), inputs=now, figures=figures,
                                 what=f"{len(a.notebooks)} notebooks executed by tools/run_nbs.py"))


if __name__ == "__main__":
    main()
