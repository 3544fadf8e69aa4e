"""The reproduction end to end on a tiny benchmark: corrmine-reproduce executes the experiment notebooks with papermill,
each writes its record, the tables are built from the records, a second call runs nothing, and a lost record runs again;
and the paper profile's whole path at real resolution, shortened, under torchrun (the experiment notebook hands
training to corrmine-train with 2 gloo processes)."""
import dataclasses
import json
from pathlib import Path

import pytest
import torch

from corrmine import reproduce
from corrmine.core import Config, write_json
from corrmine.encoder import load_encoder
from corrmine.datasets import prepare_frames
from corrmine.reproduce import SOURCE, STORE, main
from corrmine.synth import PRESETS, generate
from corrmine.tasks import evaluate

ROOT = Path(__file__).parents[1]
SMALL = ["device=cpu", "train.crop=48", "train.batch_size=2", "train.n_refs=2", "train.frame_gaps=(1,2)", "train.steps=3",
         "train.warmup_steps=1", "train.workers=0", "train.log_every=1", "train.probe_every=0", "train.val_every=0",
         "train.ckpt_every=2", "mining.ot_iters=10"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    cfg = dataclasses.replace(PRESETS["tiny"], height=64, width=96, frames=8, train_videos=4, val_videos=2, probe_videos=2)
    return generate(cfg, tmp_path_factory.mktemp("bench") / "tiny", progress=False)


def test_runs_write_records_and_tables_and_resume(tiny, tmp_path, capsys, monkeypatch):
    args = ["--data-root", str(tiny), "--results", str(tmp_path / "results"), "--runs", str(tmp_path / "runs"),
            "--repo", str(ROOT), "--only", "3", "--seeds", "0", "--ablation-steps", "2", *SMALL]
    main(args)
    records = tmp_path / "results" / "records" / "synthetic"
    names = sorted(p.stem for p in records.glob("*.json"))
    assert names == ["main-s0", "mining-fb+ot+tc-s0", "mining-fb+tc-s0", "mining-fb-s0", "mining-none-s0", "mining-precision", "plain-s0"]
    main_rec = json.loads((records / "main-s0.json").read_text())
    assert main_rec["steps"] == 3 and main_rec["seed"] == 0 and main_rec["config"]["train"]["crop"] == 48
    assert set(main_rec["metrics"]) == {"match", "davis", "jhmdb", "vip"} and main_rec["run"]["commit"]
    none = json.loads((records / "mining-none-s0.json").read_text())
    assert none["steps"] == 2 and none["config"]["mining"]["mining"] == "none"
    prec = json.loads((records / "mining-precision.json").read_text())["metrics"]
    assert set(prec) == {"none", "fb", "ot", "tc", "fb+ot", "fb+tc", "ot+tc", "fb+ot+tc"}
    assert 0 <= prec["fb"]["trained"]["s0"]["precision"] <= 1 and prec["fb"]["random"]["s0"]["share"] > 0
    table3 = (tmp_path / "results" / "tables" / "synthetic" / "table3.md").read_text()
    assert "| ot+tc |" in table3 and "not trained" in table3 and "too few seeds" in table3
    capsys.readouterr()

    main(args)                                                          # everything is done: nothing runs
    assert "7 of 7 runs done; 0 to run" in capsys.readouterr().out
    (records / "mining-fb-s0.json").unlink()                            # a lost record: that run, and only it, runs again
    main(args)
    assert "6 of 7 runs done; 1 to run" in capsys.readouterr().out and (records / "mining-fb-s0.json").exists()

    # --verify makes every run again from nothing in a scratch folder and compares each number with the committed record;
    # on one machine the CPU runs are deterministic, so every number is equal. One run is made again for real (the
    # others, made the same way, would only repeat it), and one number of another is changed: the report must say so
    real, made = reproduce.execute, []
    def execute(run, records, notebooks, repo=".", progress=False):
        made.append(run.name)
        if run.name == "mining-none-s0": return real(run, records, notebooks, repo, progress)
        rec = json.loads((tmp_path / "results/records/synthetic" / f"{run.name}.json").read_text())
        if run.name == "plain-s0": rec["metrics"]["davis"]["J&F-Mean"] += 0.01
        Path(records).mkdir(parents=True, exist_ok=True)
        return write_json(Path(records) / f"{run.name}.json", {**rec, "params": run.params})
    monkeypatch.setattr(reproduce, "execute", execute)
    main(args + ["--verify", "--verify-into", str(tmp_path / "verify")])
    assert sorted(made) == names
    rows = json.loads((tmp_path / "verify" / "verify-synthetic.json").read_text())
    assert {r["record"] for r in rows} == set(names) and sum(bool(r["key"]) for r in rows) > 50
    assert [(r["record"], r["key"]) for r in rows if r["verdict"] != "equal"] == [("plain-s0", "davis.J&F-Mean")]
    assert sum(r["record"] == "mining-none-s0" and r["verdict"] == "equal" for r in rows) >= 10
    assert "| main-s0 |" in (tmp_path / "verify" / "verify-synthetic.md").read_text()
    assert sorted(p.stem for p in (tmp_path / "verify/results/records/synthetic").glob("*.json")) == names   # made again there


def test_the_paper_profile_names_what_is_missing(tmp_path):
    with pytest.raises(SystemExit, match="DAVIS-2017 trainval"):
        main(["--profile", "paper", "--data-root", str(tmp_path), "--results", str(tmp_path / "r")])


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU path of the paper profile")
def test_the_paper_profile_whole_at_real_resolution_shortened_under_torchrun(tiny, tmp_path, capsys):
    """The paper profile's whole path on the CPU, at a tiny size but real resolution: evaluation videos at 480p,
    training videos at 720p made into the frame store, every training run shortened to 2 steps under torchrun with 2
    gloo processes. Without --steps it refuses (no GPU), and without the frame store it names the command that makes it."""
    pytest.importorskip("av")
    cfg = dataclasses.replace(PRESETS["real-res"], frames=6, val_videos=1, train_videos=2)
    root = generate(cfg, tmp_path / "real", progress=False)
    assert (root / "videos" / "train0000.mp4").is_file()
    args = ["--profile", "paper", "--data-root", str(root), "--results", str(tmp_path / "results"), "--runs", str(tmp_path / "runs"),
            "--repo", str(ROOT), "--only", "2", "--seeds", "0", "--nproc", "2", "train.batch_size=2", "train.workers=1",
            f"train.probe={tiny / 'select'}", "mining.ot_iters=10"]
    with pytest.raises(SystemExit, match="corrmine-prep .*JPEGImages --out .*JPEGImages_s256"):
        main(args + ["--check", "--steps", "2"])
    prepare_frames(root / SOURCE, root / STORE, progress=False)
    with pytest.raises(SystemExit, match="no CUDA device is visible here.*--steps"):
        main(args + ["--check"])
    main(args + ["--steps", "2"])
    rec = json.loads((tmp_path / "results/records/paper/main-s0.json").read_text())
    assert rec["processes"] == 2 and rec["steps"] == 2 and set(rec["metrics"]) == {"davis", "jhmdb", "vip"}
    assert rec["config"]["train"]["data"] == str(root / STORE) and rec["config"]["device"] == "cpu"
    assert rec["config"]["train"]["crop"] == 256 and rec["config"]["train"]["n_refs"] == 5       # the preset's clip shape
    run = tmp_path / "runs/paper/main-s0"
    vals = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if '"kind": "val"' in line]
    assert [v["step"] for v in vals] == [1, 2] and vals[0]["videos"] == ["select000", "select001"]
    assert (run / "checkpoint-000001.pt").is_file() and (run / "checkpoint-000002.pt").is_file()
    assert "| trained (`paper`, 2 steps) |" in (tmp_path / "results/tables/paper/table2.md").read_text()
    assert "shortened: every training run 2 steps on the CPU" in capsys.readouterr().out


def test_a_rerun_writes_the_same_numbers(tiny, tmp_path):
    """Determinism of the evaluation: a second run, which reads its resized frames from the cache the first one wrote,
    and runs on another number of threads, gives the same metrics to the last digit, raw colour (3-d features, full of
    near-ties in the top-k) included."""
    cfg = Config().override({"jhmdb.size": (48, 64), "vip.size": (48, 64), "device": "cpu"})
    threads = torch.get_num_threads()
    out = {}
    try:
        for i, n in enumerate([threads, 1]):
            torch.set_num_threads(n)
            out[i] = {(enc, t): evaluate(load_encoder(enc, cfg.model, 0), t, root, tmp_path / f"{enc}-{t}-{i}", cfg, progress=False,
                                         cache=tmp_path / "cache")
                      for enc in ("colour", "random") for t, root in [("jhmdb", tiny / "JHMDB"), ("vip", tiny / "VIP_Fine"),
                                                                       ("davis", tiny / "DAVIS")]}
    finally: torch.set_num_threads(threads)
    assert any((tmp_path / "cache" / "resized").iterdir())
    assert out[0] == out[1]
