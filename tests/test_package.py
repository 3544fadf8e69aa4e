"""The package as a library: imports without side effects, documented public API."""
import importlib
import inspect
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

from fastcore.docments import docments

import corrmine

MODULES = sorted(m.name for m in pkgutil.iter_modules(corrmine.__path__) if not m.name.startswith("_"))


def test_modules_exist():
    assert {"core", "viz", "toy", "affinity", "cycle", "sinkhorn", "window", "selection", "negatives", "loss"} <= set(MODULES)


def test_import_has_no_side_effects(tmp_path):
    "Importing every module prints nothing, writes no file, and leaves torch's global state and the RNG alone."
    code = f"""
import json, sys, logging, torch
state = (torch.random.get_rng_state().clone(), torch.get_default_dtype(), torch.get_num_threads(),
         torch.are_deterministic_algorithms_enabled(), len(logging.getLogger().handlers))
import corrmine
for m in {MODULES!r}: __import__('corrmine.' + m)
after = (torch.random.get_rng_state(), torch.get_default_dtype(), torch.get_num_threads(),
         torch.are_deterministic_algorithms_enabled(), len(logging.getLogger().handlers))
same = bool((state[0] == after[0]).all()) and state[1:] == after[1:]
sys.__stdout__.write(json.dumps(dict(same=same, mpl='matplotlib.pyplot' in sys.modules)))
"""
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out == dict(same=True, mpl=False), out
    assert r.stderr == "", r.stderr
    assert list(tmp_path.iterdir()) == []


def _public(mod):
    names = getattr(mod, "__all__", [])
    for name in names:
        obj = getattr(mod, name)
        if (inspect.isfunction(obj) or inspect.isclass(obj)) and obj.__module__ == mod.__name__:
            yield name, obj
            if inspect.isclass(obj):
                for mname, m in vars(obj).items():
                    if inspect.isfunction(m) and not mname.startswith("_"):
                        yield f"{name}.{mname}", m


def test_public_api_is_documented():
    "Every public function has a docstring, and every tensor argument or result documents its shape."
    missing, shapeless = [], []
    for modname in MODULES:
        mod = importlib.import_module(f"corrmine.{modname}")
        for name, obj in _public(mod):
            if not inspect.getdoc(obj): missing.append(f"{modname}.{name}")
            if not inspect.isfunction(obj): continue
            sig, docs = inspect.signature(obj), docments(obj)
            for p, ann in [(k, v.annotation) for k, v in sig.parameters.items()] + [("return", sig.return_annotation)]:
                if "Tensor" in str(ann) and "[" not in (docs.get(p) or ""):
                    shapeless.append(f"{modname}.{name}({p})")
    assert not missing, f"no docstring: {missing}"
    assert not shapeless, f"tensor without a documented shape: {shapeless}"


def test_notebooks_and_modules_match():
    "Each module is exported by exactly one notebook (`#| default_exp`)."
    nbs = Path(__file__).parents[1] / "nbs"
    exp = {}
    for nb in nbs.glob("[0-9]*.ipynb"):
        for cell in json.loads(nb.read_text())["cells"]:
            src = "".join(cell["source"])
            if src.startswith("#| default_exp"):
                exp.setdefault(src.split()[-1], []).append(nb.name)
    assert sorted(exp) == MODULES and all(len(v) == 1 for v in exp.values()), exp
