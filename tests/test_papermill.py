"""The reproduction path: papermill runs a method notebook with parameters, as reproduce.sh does."""
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import papermill
import pytest
import torch

ROOT = Path(__file__).parents[1]
NB = ROOT / "nbs" / "07_selection.ipynb"


def test_parameters_reach_the_config_and_figures_are_written(tmp_path):
    out = tmp_path / "out.ipynb"
    papermill.execute_notebook(str(NB), str(out), cwd=str(NB.parent), kernel_name="python3", progress_bar=False,
                               parameters=dict(fig_dir=str(tmp_path / "figs"), overrides={"mining.ot_thresh": 0.9}))
    assert (tmp_path / "figs" / "07_selection.png").stat().st_size > 1000
    text = out.read_text()
    assert "injected-parameters" in text and "mining.ot_thresh" in text


def test_a_bad_override_fails_the_run_with_the_key_named(tmp_path):
    with pytest.raises(papermill.PapermillExecutionError, match="ot_tresh"):
        papermill.execute_notebook(str(NB), str(tmp_path / "out.ipynb"), cwd=str(NB.parent), kernel_name="python3",
                                   progress_bar=False, parameters=dict(overrides={"mining.ot_tresh": 0.9}))


def test_runner_skips_flagged_cells_and_keeps_them(tmp_path):
    "tools/run_nbs.py skips `#| gpu` cells on a CPU machine, and writes them back unexecuted."
    if torch.cuda.is_available(): pytest.skip("gpu cells run when CUDA is available")
    nb = ROOT / "nbs" / "00_core.ipynb"
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "run_nbs.py"), "--out-dir", str(tmp_path), "--no-progress", str(nb)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "skipped 1 cell" in r.stderr
    cells = json.loads((tmp_path / nb.name).read_text())["cells"]
    gpu = [c for c in cells if "".join(c["source"]).startswith("#| gpu")]
    assert len(gpu) == 1 and gpu[0]["cell_type"] == "code" and gpu[0]["outputs"] == []


def test_fig_dir_is_a_parameter_wherever_a_notebook_defines_it():
    "reproduce.sh passes fig_dir to every method notebook; outside the `parameters` cell, the notebook's own value would win."
    for nb in sorted((ROOT / "nbs").glob("[0-9]*.ipynb")):
        cells = json.loads(nb.read_text())["cells"]
        params = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
        defines = [c for c in cells if c["cell_type"] == "code" and "".join(c["source"]).startswith("fig_dir =")]
        if defines:
            assert len(params) == 1 and defines == params, f"{nb.name}: fig_dir must be set in its one cell tagged 'parameters'"


def test_runner_with_a_stamp_runs_again_only_when_an_input_changed(tmp_path):
    "reproduce.sh's figures step: a second run with nothing changed executes nothing; an edited notebook, a lost executed copy or a lost figure runs again."
    nb, out, figs, stamp = tmp_path / "n.ipynb", tmp_path / "out", tmp_path / "figs", tmp_path / "stamp.json"
    figs.mkdir()
    params = nbformat.v4.new_code_cell("fig_dir = None"); params.metadata["tags"] = ["parameters"]
    def write(x):
        cells = [params, nbformat.v4.new_code_cell(f"x = {x}\nopen(fig_dir + '/a.png', 'w').write(str(x))")]
        nbformat.write(nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}}), str(nb))
    def runner():
        r = subprocess.run([sys.executable, str(ROOT / "tools" / "run_nbs.py"), "--out-dir", str(out), "--fig-dir", str(figs),
                            "--no-progress", "--stamp", str(stamp), str(nb)], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        return r.stderr
    write(1); runner()
    assert (out / "n.ipynb").exists() and json.loads(stamp.read_text())["inputs"]["notebooks"]
    assert json.loads(stamp.read_text())["figures"] == ["a.png"]
    assert "not executed again" in runner()
    for lost in (out / "n.ipynb", figs / "a.png"):
        lost.unlink()
        assert "missing" in runner() and lost.exists(), lost
    write(2)
    assert "not executed again" not in runner() and (figs / "a.png").read_text() == "2"
