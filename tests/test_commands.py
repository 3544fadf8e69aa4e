"""Every command turns a user's mistake into one `[corrmine] error: ...` line and exit code 2: a bad checkpoint, a
missing path, an output it cannot write, a setting out of its range. Run through `subprocess`, as a user runs them."""
import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from corrmine.synth import PRESETS, generate

BIN = Path(sys.executable).parent

# Root ignores permission bits, so under root (containers, CI) a read-only folder is made read-only where the system
# calls are made: the child process's os.mkdir and os.open refuse every path under it with EACCES, as the kernel does.
DENY = """
import errno, os, sys
ro, real_mkdir, real_open = os.environ["CORRMINE_TEST_READONLY"], os.mkdir, os.open
def under(p): return os.path.abspath(os.fspath(p)).startswith(ro + os.sep)
def mkdir(p, *a, **k):
    if under(p): raise PermissionError(errno.EACCES, "Permission denied", os.fspath(p))
    return real_mkdir(p, *a, **k)
def open_(p, flags, *a, **k):
    if under(p) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT): raise PermissionError(errno.EACCES, "Permission denied", os.fspath(p))
    return real_open(p, flags, *a, **k)
os.mkdir, os.open = mkdir, open_
from corrmine.cli import run
run("{command}", sys.argv[1:])
"""


def run(command: str, *args: str, readonly: Path | None = None, cwd: Path | None = None) -> tuple[int, list[str]]:
    "Exit code and the lines of standard error of a command; `readonly`: that folder cannot be written."
    env = {**os.environ, "CORRMINE_DEBUG": ""}
    if readonly is not None and os.geteuid() == 0:
        env["CORRMINE_TEST_READONLY"] = str(readonly.resolve())
        argv = [sys.executable, "-c", DENY.replace("{command}", command), *args]
    else:
        if readonly is not None: readonly.chmod(0o555)
        argv = [str(BIN / command), *args]
    try: r = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd, timeout=300)
    finally:
        if readonly is not None: readonly.chmod(0o755)
    return r.returncode, [line for line in r.stderr.splitlines() if line.strip()]


def one_error(res: tuple[int, list[str]], *says: str) -> None:
    code, lines = res
    assert code == 2, (code, lines)
    assert len(lines) == 1 and lines[0].startswith("[corrmine] error: "), lines
    for s in says: assert s in lines[0], (s, lines[0])


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    cfg = dataclasses.replace(PRESETS["tiny"], frames=6, train_videos=3, val_videos=2, probe_videos=0)
    return generate(cfg, tmp_path_factory.mktemp("bench") / "tiny", progress=False)


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    (d / "noise.pt").write_bytes(np.random.default_rng(0).bytes(4096))
    (d / "ro").mkdir()
    return d


def test_eval_a_bad_checkpoint_missing_data_a_bad_setting_and_a_readonly_output(bench, bad_files, tmp_path):
    # (the other bad checkpoints, and every setting, are checked in-process in 15_encoder and 00_core)
    res = run("corrmine-eval", "--quiet", "davis", "--encoder", str(bad_files / "noise.pt"), "--data", str(bench / "DAVIS"), "--out", str(tmp_path / "o"))
    one_error(res, f"{bad_files / 'noise.pt'}: not a checkpoint")
    assert "weights_only" not in res[1][0] and not (tmp_path / "o").exists()          # nothing written
    one_error(run("corrmine-eval", "--quiet", "davis", "--encoder", "colour", "--data", str(tmp_path / "DAVIS"), "--out", str(tmp_path / "o")),
              str(tmp_path / "DAVIS"))
    one_error(run("corrmine-eval", "--quiet", "davis", "--encoder", "colour", "--data", str(bench / "DAVIS"), "--out", str(tmp_path / "o"),
                  "eval.topk=0"), "config key 'eval.topk' = 0: must be >= 1")
    one_error(run("corrmine-eval", "--quiet", "match", "--encoder", "colour", "--data", str(bench), "--out", str(bad_files / "ro" / "out"),
                  readonly=bad_files / "ro"), "Permission denied", str(bad_files / "ro" / "out"))


def test_train_missing_data_readonly_output_and_a_corrupt_checkpoint(bench, bad_files, tmp_path):
    small = ["train.crop=32", "train.batch_size=2", "train.n_refs=1", "train.steps=2", "train.workers=0", "train.probe=", "device=cpu"]
    # the preset's relative data path, from another folder: refused before anything is written
    res = run("corrmine-train", "--preset", "synthetic-cpu", f"train.out={tmp_path / 'run'}", *small, cwd=tmp_path)
    one_error(res, "data/bench/YTVOS/train/JPEGImages: no such folder (train.data", "absolute path")
    assert not (tmp_path / "run").exists()
    data = f"train.data={bench / 'YTVOS/train/JPEGImages'}"
    one_error(run("corrmine-train", data, f"train.out={bad_files / 'ro' / 'run'}", *small, readonly=bad_files / "ro"), "Permission denied")
    # a run folder whose checkpoint was cut short: named, in corrmine's words
    code, _ = run("corrmine-train", data, f"train.out={tmp_path / 'run'}", *small)
    assert code == 0
    ck = tmp_path / "run/checkpoint.pt"; ck.write_bytes(ck.read_bytes()[:1000])
    one_error(run("corrmine-train", data, f"train.out={tmp_path / 'run'}", *small), f"{ck}: not a readable checkpoint")


def test_synth_readonly_output_and_a_bad_setting(bad_files, tmp_path):
    one_error(run("corrmine-synth", "--preset", "tiny", "--out", str(bad_files / "ro" / "b"), readonly=bad_files / "ro"), "Permission denied")
    code, lines = run("corrmine-synth", "--preset", "tiny", "--out", str(tmp_path / "b"), "frames=abc")
    one_error((code, lines), "frames")


def test_debug_shows_the_traceback(bench, tmp_path):
    code, lines = run("corrmine-eval", "--quiet", "davis", "--encoder", "colour", "--data", str(tmp_path / "DAVIS"), "--out", str(tmp_path / "o"), "--debug")
    assert code == 1 and lines[0].startswith("Traceback") and "DataError" in lines[-1]


def test_prep_writes_a_frame_store_and_turns_mistakes_into_one_line(bench, tmp_path):
    src = bench / "YTVOS/train/JPEGImages"
    r = subprocess.run([str(BIN / "corrmine-prep"), str(src), "--out", str(tmp_path / "store"), "--short-side", "32"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "train on it: corrmine-train" in r.stdout and (tmp_path / "store/prep.json").is_file()
    assert sorted(p.name for p in (tmp_path / "store").iterdir() if p.is_dir()) == sorted(p.name for p in src.iterdir())
    one_error(run("corrmine-prep", str(tmp_path / "nope"), "--out", str(tmp_path / "s2")), "nope")
    one_error(run("corrmine-prep", str(src), "--out", str(tmp_path / "s3"), "--short-side", "0"), "--short-side", "at least 16")
    one_error(run("corrmine-prep", str(src), "--out", str(tmp_path / "store"), "--short-side", "64"), "short_side: 32 -> 64")
