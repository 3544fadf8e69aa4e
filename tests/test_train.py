"""Training end to end on a tiny benchmark: resume after a kill, DDP over two processes, a user's own .mp4 videos,
non-finite losses, and run folders that are resumed or refused. Seeded, CPU only, small sizes."""
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch

import corrmine.train as tr
from corrmine.affinity import clip_affinity
from corrmine.core import Config, ConfigError, FolderBusy, _flatten
from corrmine.formats import DataError
from corrmine.datasets import ClipDataset
from corrmine.encoder import CorrNet, read_checkpoint
from corrmine.loss import cltc_loss
from corrmine.synth import PRESETS, generate
from corrmine.train import main, preset, read_log


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    cfg = dataclasses.replace(PRESETS["tiny"], height=64, width=96, frames=8, train_videos=4, val_videos=2, probe_videos=2)
    return generate(cfg, tmp_path_factory.mktemp("bench") / "tiny", progress=False)


def small(tiny, out, **kw):
    "The synthetic preset, shrunk to seconds."
    o = {"train.data": str(tiny / "YTVOS/train/JPEGImages"), "train.probe": str(tiny / "probe"), "train.out": str(out),
         "train.crop": 48, "train.batch_size": 2, "train.n_refs": 2, "train.frame_gaps": (1, 2), "train.steps": 8,
         "train.warmup_steps": 2, "train.workers": 0, "train.log_every": 1, "train.probe_every": 4, "train.val_every": 0,
         "train.ckpt_every": 2, "mining.ot_iters": 20}
    return preset("synthetic-cpu", {**o, **kw})


def weights(run):
    return read_checkpoint(run / "checkpoint.pt")["model"]


def test_a_killed_run_resumes_to_the_same_weights(tiny, tmp_path, monkeypatch):
    full = main(small(tiny, tmp_path / "full", **{"train.keep_every": 4}), progress=False)
    assert full["step"] == 8 and not full["interrupted"] and "val" in full and "probe" in full
    kept = sorted(p.name for p in (tmp_path / "full").glob("checkpoint-*.pt"))       # the run's history, every 4 steps
    assert kept == ["checkpoint-000004.pt", "checkpoint-000008.pt"]
    assert read_checkpoint(tmp_path / "full/checkpoint-000004.pt")["step"] == 4
    last = read_checkpoint(tmp_path / "full/checkpoint-000008.pt")["model"]
    for k, v in weights(tmp_path / "full").items(): assert torch.equal(v, last[k]), k
    # the second run receives SIGTERM while it reads the clips of step 4: it stops there and checkpoints
    get = ClipDataset.__getitem__
    def term_at(self, k):
        if k == 4 * 2: os.kill(os.getpid(), signal.SIGTERM)
        return get(self, k)
    monkeypatch.setattr(ClipDataset, "__getitem__", term_at)
    cut = main(small(tiny, tmp_path / "cut"), progress=False)
    assert cut["interrupted"] and cut["step"] == 4
    assert read_checkpoint(tmp_path / "cut/checkpoint.pt")["step"] == 4
    monkeypatch.setattr(ClipDataset, "__getitem__", get)
    again = main(small(tiny, tmp_path / "cut"), progress=False)                    # the same command resumes
    assert again["step"] == 8 and again["bounds"] == full["bounds"]
    a, b = weights(tmp_path / "full"), weights(tmp_path / "cut")
    assert a.keys() == b.keys()
    for k in a: torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6, msg=k)
    steps = [r["step"] for r in read_log(tmp_path / "cut", "train")]
    assert steps == list(range(1, 9))                                              # one record per step, resumed or not


def test_run_folders_are_resumed_or_refused(tiny, tmp_path):
    cfg = small(tiny, tmp_path / "run", **{"train.steps": 2, "train.keep_every": 0})   # keep_every at its default (the preset keeps 100)
    main(cfg, progress=False)
    assert main(cfg, progress=False)["step"] == 2                                  # finished: nothing more to do
    stored = json.loads((tmp_path / "run/config.json").read_text())               # a folder from before train.keep_every
    del stored["train"]["keep_every"]; (tmp_path / "run/config.json").write_text(json.dumps(stored))
    assert main(cfg, progress=False)["step"] == 2                                  # the new field at its default: same run
    with pytest.raises(FileExistsError, match="another configuration"): main(cfg.override({"train.keep_every": 1}), progress=False)
    with pytest.raises(FileExistsError, match=r"another configuration \(loss.tau: 0.2 -> 0.3\)"):
        main(cfg.override({"loss.tau": 0.3}), progress=False)                     # the refusal names the key that differs
    with pytest.raises(FileExistsError, match="resume=never"): main(cfg.override({"train.resume": "never"}), progress=False)
    (tmp_path / "other").mkdir(); (tmp_path / "other/notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a corrmine run folder"): main(small(tiny, tmp_path / "other"), progress=False)
    # a run folder moved elsewhere is the same run: its own path is not part of what is compared
    shutil.copytree(tmp_path / "run", tmp_path / "moved")
    assert main(cfg.override({"train.out": str(tmp_path / "moved")}), progress=False)["step"] == 2
    ck = read_checkpoint(tmp_path / "run/checkpoint.pt")
    assert set(ck) == {"model", "optimizer", "scheduler", "scaler", "curriculum", "step", "nonfinite", "config", "commit"}


def test_ctrl_c_stops_at_a_step_and_checkpoints(tiny, tmp_path, monkeypatch):
    get = ClipDataset.__getitem__
    def interrupt_at(self, k):
        if k == 3 * 2: os.kill(os.getpid(), signal.SIGINT)                         # Ctrl-C while the clips of step 3 are read
        return get(self, k)
    monkeypatch.setattr(ClipDataset, "__getitem__", interrupt_at)
    before = signal.getsignal(signal.SIGINT)             # Python's own handler, or SIG_IGN in a shell's background job
    cut = main(small(tiny, tmp_path / "cut"), progress=False)
    assert cut["interrupted"] and cut["step"] == 3
    assert read_checkpoint(tmp_path / "cut/checkpoint.pt")["step"] == 3
    assert signal.getsignal(signal.SIGINT) is before                                 # the handler is given back
    monkeypatch.setattr(ClipDataset, "__getitem__", get)
    assert main(small(tiny, tmp_path / "cut"), progress=False)["step"] == 8         # and the same command resumes


def test_a_failed_start_leaves_the_folder_reusable(tiny, tmp_path, monkeypatch):
    # inputs are checked before anything is written: a wrong train.data leaves no folder behind
    with pytest.raises(DataError, match="no such folder .train.data"):
        main(small(tiny, tmp_path / "run", **{"train.data": str(tmp_path / "nowhere")}), progress=False)
    assert not (tmp_path / "run").exists()
    # a failure after the folder was claimed and before the first step: what it wrote goes
    real = tr.CorrNet
    def broken(*a, **k): raise RuntimeError("out of memory")
    monkeypatch.setattr(tr, "CorrNet", broken)
    with pytest.raises(RuntimeError, match="out of memory"): main(small(tiny, tmp_path / "run", **{"loss.tau": 0.3}), progress=False)
    assert not (tmp_path / "run").exists()
    monkeypatch.setattr(tr, "CorrNet", real)
    assert main(small(tiny, tmp_path / "run", **{"train.steps": 2}), progress=False)["step"] == 2    # the corrected command runs


def test_two_trainings_cannot_share_a_folder(tiny, tmp_path):
    out = tmp_path / "run"
    code = f"from corrmine.core import folder_lock\nimport time\nwith folder_lock({str(out)!r}): print('held', flush=True); time.sleep(60)"
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(FolderBusy, match=f"in use by process {holder.pid}"): main(small(tiny, out), progress=False)
        assert not (out / "config.json").exists()
    finally:
        holder.kill(); holder.wait()


def test_non_finite_losses_are_skipped_then_stop_the_run(tiny, tmp_path, monkeypatch):
    real = tr.cltc_loss
    calls = {"n": 0}
    def sometimes_nan(aff, *a, **k):
        calls["n"] += 1
        return real(aff * float("nan") if calls["n"] in (2, 3) else aff, *a, **k)
    monkeypatch.setattr(tr, "cltc_loss", sometimes_nan)
    res = main(small(tiny, tmp_path / "nan", **{"train.steps": 5, "train.max_nonfinite": 2}), progress=False)
    assert res["step"] == 5 and res["nonfinite"] == 2
    assert [r["step"] for r in read_log(tmp_path / "nan", "skip")] == [1, 2]
    calls["n"] = 0
    with pytest.raises(FloatingPointError, match="2 steps had a non-finite loss.*max_nonfinite = 1"):
        main(small(tiny, tmp_path / "nan1", **{"train.steps": 5, "train.max_nonfinite": 1}), progress=False)


DDP_SCRIPT = """
import json, sys
from corrmine.train import main, preset
cfg = preset("synthetic-cpu", json.loads(sys.argv[1]))
res = main(cfg, progress=False)
import torch.distributed as dist
with open(sys.argv[2] + f"-{dist.get_rank()}.json", "w") as fh: json.dump({k: res[k] for k in ("step", "bounds", "weights")}, fh)
"""


def test_ddp_two_processes_agree(tiny, tmp_path):
    cfg = small(tiny, tmp_path / "ddp", **{"train.steps": 4, "train.batch_size": 4, "train.val_every": 0, "train.probe": ""})
    script = tmp_path / "ddp.py"; script.write_text(DDP_SCRIPT)
    overrides = _flatten(cfg.to_dict())
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script),
                        json.dumps(overrides), str(tmp_path / "summary")], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    a, b = [json.loads((tmp_path / f"summary-{i}.json").read_text()) for i in range(2)]
    assert a["step"] == b["step"] == 4
    assert a["weights"] == b["weights"] and a["bounds"] == b["bounds"] and a["bounds"][0] != cfg.negatives.neg_lower_init
    files = sorted(p.name for p in (tmp_path / "ddp").iterdir())
    assert files == ["checkpoint.pt", "config.json", "log.jsonl", "run-info-000000.json"]      # rank 0 alone writes
    steps = [r["step"] for r in read_log(tmp_path / "ddp", "train")]
    assert steps == [1, 2, 3, 4]
    assert json.loads((tmp_path / "ddp/run-info-000000.json").read_text())["world"] == 2


def test_trains_on_a_folder_of_mp4_videos_and_evaluates_the_checkpoint(tiny, tmp_path):
    av = pytest.importorskip("av")
    videos = tmp_path / "videos"; videos.mkdir()
    rng = np.random.default_rng(0)
    for n in range(3):
        base = rng.integers(0, 256, (40, 72, 3), dtype=np.uint8)
        with av.open(str(videos / f"clip{n}.mp4"), "w") as c:
            s = c.add_stream("mpeg4", rate=10); s.width, s.height, s.pix_fmt = 64, 32, "yuv420p"
            for t in range(8):                                                      # a texture panning right
                img = np.ascontiguousarray(base[4:36, t:t + 64])
                for pkt in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")): c.mux(pkt)
            for pkt in s.encode(): c.mux(pkt)
    cfg = small(tiny, tmp_path / "mp4run", **{"train.data": str(videos), "train.probe": "", "train.crop": 32, "train.steps": 3})
    assert main(cfg, progress=False)["step"] == 3
    r = subprocess.run(["corrmine-eval", "davis", "--encoder", str(tmp_path / "mp4run/checkpoint.pt"), "--data", str(tiny / "DAVIS"),
                        "--out", str(tmp_path / "pred"), "device=cpu"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "J&F-Mean" in r.stdout and (tmp_path / "pred/davis_results-val.json").is_file()


GRAD_SCRIPT = """
import json, sys
import torch, torch.distributed as dist
from corrmine.affinity import clip_affinity
from corrmine.core import Config
from corrmine.loss import cltc_loss
dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
cfg = Config().override(json.loads(sys.argv[1]))
torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 4, stride=4), torch.nn.ReLU(), torch.nn.Conv2d(16, 16, 1))
x = torch.randn(4, 3, 3, 32, 32, generator=torch.Generator().manual_seed(1))   # 4 clips of 3 frames: 2 per process
dts = torch.tensor([[1, 2], [2, 4], [1, 2], [1, 3]])
part = slice(2 * rank, 2 * rank + 2)
model = torch.nn.parallel.DistributedDataParallel(net)
f = model(x[part].flatten(0, 1)).unflatten(0, (2, 3))
loss, stats, _ = cltc_loss(clip_affinity(f), (8, 8), dts[part], cfg, (0.0, 0.9), sync=dist.all_reduce, world=world)
loss.backward()
torch.save({"grads": [p.grad for p in net.parameters()], "stats": stats}, sys.argv[2] + f"-{rank}.pt")
dist.destroy_process_group()
"""


@pytest.mark.parametrize("pool", ["frame", "anchor"])
def test_the_loss_is_one_objective_on_any_number_of_processes(tmp_path, pool):
    "Two gloo processes, each with half the batch, give the gradient of one process on the whole batch."
    over = {"mining.mining": "fb+tc", "loss.pool": pool}
    script = tmp_path / "grad.py"; script.write_text(GRAD_SCRIPT)
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script),
                        json.dumps(over), str(tmp_path / "g")], capture_output=True, text=True,
                       env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    got = [torch.load(tmp_path / f"g-{i}.pt") for i in range(2)]
    cfg = Config().override(over)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 4, stride=4), torch.nn.ReLU(), torch.nn.Conv2d(16, 16, 1))
    x = torch.randn(4, 3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    dts = torch.tensor([[1, 2], [2, 4], [1, 2], [1, 3]])

    def grads(clips, world=1):
        net.zero_grad()
        f = net(x[clips].flatten(0, 1)).unflatten(0, (x[clips].shape[0], 3))
        loss, stats, _ = cltc_loss(clip_affinity(f), (8, 8), dts[clips], cfg, (0.0, 0.9))
        loss.backward()
        return [p.grad.clone() for p in net.parameters()], stats

    whole, st = grads(slice(0, 4))
    close = lambda a, b: torch.allclose(a, b, rtol=1e-4, atol=1e-5 * b.abs().max().item())   # float32 sums in another order
    for g in got:                                                     # DDP leaves the same averaged gradient on both
        for a, b in zip(g["grads"], whole): assert close(a, b), (a - b).abs().max()
        assert g["stats"]["positives"] == st["positives"] and g["stats"]["neg_median"] == st["neg_median"]
    assert abs(got[0]["stats"]["loss"] + got[1]["stats"]["loss"] - st["loss"]) < 1e-5
    # the halves hold different numbers of positives, so normalising each by its own count would not give this gradient
    (g0, s0), (g1, s1) = grads(slice(0, 2)), grads(slice(2, 4))
    assert s0["positives"] != s1["positives"]
    assert not all(close((a + b) / 2, c) for a, b, c in zip(g0, g1, whole))


NODES_SCRIPT = """
import json, os, sys
node = f"node{os.environ['RANK']}"                      # each process on a disk of its own, as on nodes without a shared one
os.makedirs(node, exist_ok=True); os.chdir(node)
from corrmine.core import run_command
from corrmine.train import main, preset
def body(argv):
    res = main(preset("synthetic-cpu", json.loads(argv[0])), progress=False)
    with open("summary.json", "w") as fh: json.dump({k: res[k] for k in ("step", "weights")}, fh)
run_command(body, sys.argv[1:])
"""


def test_nodes_without_a_shared_folder_resume_only_from_rank_0s_checkpoint(tiny, tmp_path):
    "Rank 0 decides from which step a run resumes; a process that cannot read that checkpoint stops them all, saying why."
    cfg = small(tiny, "run", **{"train.steps": 2, "train.batch_size": 4, "train.val_every": 0, "train.probe": ""})
    script = tmp_path / "nodes.py"; script.write_text(NODES_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CORRMINE_DEBUG": ""}
    def launch():
        return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script),
                               json.dumps(_flatten(cfg.to_dict()))], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    r = launch()                                                       # a fresh run needs nothing on the other node
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "node0/run/checkpoint.pt").is_file() and not (tmp_path / "node1/run/checkpoint.pt").exists()
    r = launch()                                                       # the same command again: rank 0 resumes at step 2
    assert r.returncode != 0
    said = "[corrmine] error: run/checkpoint.pt: rank 0 resumes from step 2, and process 1 cannot read that checkpoint there"
    assert r.stderr.count(said) == 2, r.stderr[-3000:]                # both processes say it (their lines may interleave)
    (tmp_path / "node1/run").mkdir()
    shutil.copy(tmp_path / "node0/run/checkpoint.pt", tmp_path / "node1/run/checkpoint.pt")    # a copy on the other node
    r = launch()
    assert r.returncode == 0, r.stderr[-3000:]
    a, b = [json.loads((tmp_path / f"node{i}/summary.json").read_text()) for i in range(2)]
    assert a == b and a["step"] == 2


def test_sync_bn_is_refused_on_cpu_processes_and_keeps_the_checkpoint_format(tiny, tmp_path, monkeypatch):
    "model.sync_bn: PyTorch synchronises BatchNorm only on GPUs, so several CPU processes are refused before anything is written."
    with monkeypatch.context() as m:
        m.setattr(tr, "setup_distributed", lambda device: (0, 2, torch.device("cpu")))
        cfg = small(tiny, tmp_path / "sbn", **{"model.sync_bn": True, "train.batch_size": 4})
        with pytest.raises(ConfigError, match="model.sync_bn"): main(cfg, progress=False)
    assert not (tmp_path / "sbn").exists()
    plain, synced = CorrNet(cfg.model), torch.nn.SyncBatchNorm.convert_sync_batchnorm(CorrNet(cfg.model))
    assert any(isinstance(m, torch.nn.SyncBatchNorm) for m in synced.modules())
    assert list(plain.state_dict()) == list(synced.state_dict())          # checkpoints load into a plain network
    a = main(small(tiny, tmp_path / "a", **{"train.steps": 2, "train.probe": ""}), progress=False)
    b = main(small(tiny, tmp_path / "b", **{"train.steps": 2, "train.probe": "", "model.sync_bn": True}), progress=False)
    assert a["weights"] == b["weights"]                                      # one process: nothing to synchronise


def test_validation_on_a_folder_in_davis_layout_names_its_videos(tiny, tmp_path):
    "train.probe may be a user's own folder in DAVIS's layout: J&F only (no exact truth), and the log says on which videos."
    res = main(small(tiny, tmp_path / "v", **{"train.steps": 2, "train.probe": str(tiny / "DAVIS"), "train.val_every": 2}), progress=False)
    assert set(res["val"]) == {"J&F"}
    val = read_log(tmp_path / "v", "val")
    assert [r["step"] for r in val] == [2] and val[0]["on"] == str(tiny / "DAVIS")
    assert val[0]["videos"] == (tiny / "DAVIS/ImageSets/2017/val.txt").read_text().split()
    with pytest.raises(DataError, match="neither a corrmine-synth root"):
        main(small(tiny, tmp_path / "w", **{"train.probe": str(tiny / "YTVOS")}), progress=False)
    assert not (tmp_path / "w").exists()
