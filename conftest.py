"""One `pytest` run covers `tests/` and the notebooks in `nbs/`.

Each notebook is one test item, executed with nbdev's own runner (`nbdev.test.test_nb`) and the
flags of `settings.ini`: cells tagged `#| slow` or `#| gpu` are skipped unless forced, e.g.
`pytest --flags "slow gpu"`. Notebooks whose name starts with `_` are scratch and never run.
"""
from pathlib import Path

import pytest
from nbdev.config import get_config
from nbdev.test import test_nb

ROOT = Path(__file__).parent


def pytest_addoption(parser):
    parser.addoption("--flags", default="", help="nbdev test flags to force, e.g. 'slow gpu'")


def pytest_collect_file(parent, file_path):
    if file_path.suffix == ".ipynb" and file_path.parent == ROOT / "nbs" and not file_path.name.startswith("_"):
        return NotebookFile.from_parent(parent, path=file_path)


class NotebookFile(pytest.File):
    def collect(self):
        yield NotebookItem.from_parent(self, name=self.path.stem)


class NotebookItem(pytest.Item):
    def runtest(self):
        cfg = get_config(path=ROOT)  # by keyword: positionally nbdev 2 loads no config
        skip = cfg.get("tst_flags", "").split()
        force = self.config.getoption("--flags").split()
        ok, _ = test_nb(self.path, skip_flags=skip, force_flags=force, showerr=True)
        if not ok:
            raise NotebookFailure(f"{self.path.name} failed; the cell's traceback is in the captured stderr")

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, NotebookFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, 0, f"notebook {self.path.name}"


class NotebookFailure(Exception):
    """A cell of a notebook raised."""
