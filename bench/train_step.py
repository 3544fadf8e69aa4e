"""Where a training step's time goes: data, the encoder's forward and backward, the mining, the loss, the optimiser.

    python bench/train_step.py                              # the paper's clip shape (T = 5, 256 px), batch 2, device 'auto'
    python bench/train_step.py --device cuda --batch 24 --out results/bench/train-step-cuda.json

One step of `corrmine.train` is cut into its parts and each part is timed alone (median of `--repeat` runs after a
warm-up, with CUDA synchronised): reading and augmenting the clips (one process, no DataLoader workers, so this is
the cost per worker), the forward pass, mining the positives (FB, OT, TC) and selecting the negatives, the loss with
its backward pass, and Adam. The step is the work on the device: forward, mining, loss and backward, optimiser. The
data are not in it, because the training loop reads them in DataLoader workers while the device computes. The
mining's share of the step is the number to watch: the paper's confidence levels should cost little next to the
network. The clips come from the embedded benchmark's training videos, resized up to the crop.

Then the data pipeline as the training loop builds it (the same DataLoader: `--workers` processes, the clip
stream, pinned memory on CUDA), in two ways:
- alone: its clips per second once its workers have started (the batches they read ahead while starting are
  taken untimed), against the step's clips per second;
- in a short training loop (`--loop-steps` steps of forward, mining, loss, backward and Adam): the share of the
  loop spent waiting for the next batch, which is what a pipeline too slow for the step costs.
"""
import argparse
import dataclasses
import os
import time

import torch

from corrmine.affinity import clip_affinity
from corrmine.core import get_device, run_info, write_json
from corrmine.datasets import ClipDataset
from corrmine.encoder import CorrNet
from corrmine.loss import info_nce
from corrmine.negatives import Curriculum, band_negatives, spread_moments
from corrmine.selection import select_positives
from corrmine.window import crop_centres
from corrmine.train import clip_loader, preset

from timing import timed


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--batch", type=int, default=2, help="clips per step (the paper: 12-24 over several GPUs)")
    p.add_argument("--data", default="data/bench/YTVOS/train/JPEGImages")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--workers", type=int, help="DataLoader workers (default: the paper preset's, at most one per CPU)")
    p.add_argument("--batches", type=int, help="batches the pipeline alone is timed on (default: twice the workers, at least 4)")
    p.add_argument("--loop-steps", type=int, help="steps of the short training loop (default: four per worker, at least 6)")
    p.add_argument("--solver", choices=("log", "scaling"), help="mining.ot_solver (default: the paper preset's); the other one is timed too")
    p.add_argument("--out", help="write the numbers as JSON here")
    a = p.parse_args()
    dev = get_device(a.device)
    cfg = preset("paper", {"device": str(dev), "train.data": a.data, **({"mining.ot_solver": a.solver} if a.solver else {})})
    t = cfg.train
    data = ClipDataset(t.data, t, seed=0)
    torch.manual_seed(0)
    net = CorrNet(cfg.model).to(dev).train()
    if dev.type == "cuda": net = net.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), lr=t.lr)
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if dev.type == "cuda" else torch.autocast("cpu", enabled=False)
    cur = Curriculum(cfg.negatives)

    k = iter(range(10**6))
    t_data, batch = timed(lambda: torch.utils.data.default_collate([data[next(k)] for _ in range(a.batch)]), dev, a.repeat)
    x = batch["frames"].to(dev).flatten(0, 1)
    if dev.type == "cuda": x = x.contiguous(memory_format=torch.channels_last)
    dts = batch["dts"].to(dev)
    B, T = batch["frames"].shape[:2]

    def forward():
        with amp: f = net(x)
        return clip_affinity(f.float().unflatten(0, (B, T)))
    t_fwd, aff = timed(forward, dev, a.repeat)
    hw = (t.crop // 8, t.crop // 8)
    centres = lambda b: crop_centres(b["boxes"], b["flip"], (t.crop, t.crop), hw).to(dev)   # the windows follow the crops

    def mine(aff=aff, dts=dts, mining=cfg.mining, cen=centres(batch)):
        a_ = aff.detach()
        pos = select_positives(a_, hw, dts, mining, cen)
        neg = band_negatives(a_, pos, cur.bounds(), cfg.negatives, hw)
        return pos, neg, spread_moments(a_, pos, hw, cfg.negatives, cfg.loss.tau)
    t_mine, (pos, neg, _) = timed(mine, dev, a.repeat)
    other = "scaling" if cfg.mining.ot_solver == "log" else "log"  # the same mining with the other Sinkhorn method
    t_mine_other, _ = timed(lambda: mine(mining=dataclasses.replace(cfg.mining, ot_solver=other)), dev, a.repeat)

    def loss_backward():
        opt.zero_grad(set_to_none=True)
        a_ = forward()
        loss, _ = info_nce(a_, pos, neg, cfg.loss.tau)
        loss.backward()
    t_fb, _ = timed(loss_backward, dev, a.repeat)                 # forward again, then the loss and the backward pass
    t_opt, _ = timed(lambda: opt.step(), dev, a.repeat)
    t_bwd = max(t_fb - t_fwd, 0.0)
    step = t_fwd + t_mine + t_bwd + t_opt                         # the device's work; the workers read the data meanwhile
    parts = {"forward": t_fwd, "mining": t_mine, "loss + backward": t_bwd, "optimiser": t_opt}

    # the data pipeline as the training loop builds it: alone, then feeding a short loop
    W = a.workers if a.workers is not None else min(t.workers, os.cpu_count() or 1)
    pipe = pipeline(data, B, W, dev, a.batches)
    def train_step(batch):                                         # the parts above, one after the other
        xb = batch["frames"].to(dev, non_blocking=True).flatten(0, 1)
        if dev.type == "cuda": xb = xb.contiguous(memory_format=torch.channels_last)
        opt.zero_grad(set_to_none=True)
        with amp: f = net(xb)
        a_ = clip_affinity(f.float().unflatten(0, (B, T)))
        pos, neg, _ = mine(a_, batch["dts"].to(dev), cen=centres(batch))
        info_nce(a_, pos, neg, cfg.loss.tau)[0].backward()
        opt.step()
    steps = a.loop_steps or max(6, 4 * W)
    loop = training_loop(data, B, W, dev, steps, train_step)

    info = run_info(dev)
    print(f"{info['gpu'] or info['cpu']} ({info['cpus']} CPUs), torch {info['torch']}, device {dev}")
    print(f"one step at the paper's clip shape: {B} clips x {T} frames x {t.crop}^2, N = {hw[0] * hw[1]}, "
          f"mining {cfg.mining.mining} (Sinkhorn eps {cfg.mining.ot_eps}, up to {cfg.mining.ot_iters} iterations)")
    for name, v in parts.items(): print(f"  {name:18s} {v * 1000:9.1f} ms  {v / step:6.1%}")
    print(f"  {'step':18s} {step * 1000:9.1f} ms ({B / step:.1f} clips/s); mining / (forward + backward) = {t_mine / (t_fwd + t_bwd):.2f}")
    print(f"  mining with the {other} Sinkhorn method instead of {cfg.mining.ot_solver}: {t_mine_other * 1000:.1f} ms, "
          f"{t_mine_other / (step - t_mine + t_mine_other):.1%} of the step, mining / (forward + backward) = {t_mine_other / (t_fwd + t_bwd):.2f}")
    print(f"data: one process reads {B / t_data:.1f} clips/s ({t_data * 1000:.0f} ms a batch); the pipeline with {W} workers "
          f"{pipe['clips_per_s']:.1f} clips/s over {pipe['batches']} batches, {pipe['clips_per_s'] / (B / step):.2f}x the step's "
          f"{B / step:.1f} clips/s")
    print(f"a training loop of {loop['steps']} steps with {W} workers: {loop['clips_per_s']:.1f} clips/s, waiting for data "
          f"{loop['wait_share']:.1%} of the time (the first batch, while the workers start, not counted)")
    if dev.type == "cuda": print(f"  peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")
    if a.out: write_json(a.out, dict(parts=parts, step=step, batch=B, frames=T, crop=t.crop, run=info, ot_solver=cfg.mining.ot_solver,
                                    mining_share=t_mine / step, mining_other_solver={other: t_mine_other},
                                    data_one_process=t_data, workers=W, pipeline=pipe, loop=loop,
                                    pipeline_over_step=pipe["clips_per_s"] / (B / step)))


def pipeline(data, B: int, W: int, dev, batches: int | None) -> dict:
    """Clips per second of the training loop's DataLoader alone, with W workers: the 2W batches they read ahead while
    starting are taken untimed, then `batches` (default 2W, at least 4) are timed."""
    n = batches or max(4, 2 * W)
    it = iter(clip_loader(data, B, 0, 1, 0, 0, W, pin=dev.type == "cuda"))
    for _ in range(max(1, 2 * W)): next(it)
    t0 = time.perf_counter()
    for _ in range(n): next(it)
    dt = time.perf_counter() - t0
    del it
    return dict(batches=n, seconds=dt, clips_per_s=n * B / dt)


def training_loop(data, B: int, W: int, dev, steps: int, train_step) -> dict:
    "A short training loop fed by the DataLoader with W workers: time spent waiting for each batch against the whole."
    it = iter(clip_loader(data, B, 0, 1, 1, 0, W, pin=dev.type == "cuda"))
    train_step(next(it))                                         # the workers start, and the first step's set-up
    wait = 0.0
    if dev.type == "cuda": torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        t1 = time.perf_counter()
        batch = next(it)
        wait += time.perf_counter() - t1
        train_step(batch)
        if dev.type == "cuda": torch.cuda.synchronize()        # as the loop's logging does, now and then
    total = time.perf_counter() - t0
    del it
    return dict(steps=steps, seconds=total, wait_seconds=wait, wait_share=wait / total, clips_per_s=steps * B / total)


if __name__ == "__main__":
    main()
