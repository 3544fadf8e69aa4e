"""Where a training step's time goes: data, the encoder's forward and backward, the mining, the loss, the optimiser.

    python bench/train_step.py                              # the paper's clip shape (T = 5, 256 px), batch 2, device 'auto'
    python bench/train_step.py --device cuda --batch 24 --out results/bench/train-step-cuda.json

One step of `corrmine.train` is cut into its parts and each part is timed alone (median of `--repeat` runs after a
warm-up, with CUDA synchronised): reading and augmenting the clips (one process, no DataLoader workers, so this is
the cost per worker), the forward pass, mining the positives (FB, OT, TC) and selecting the negatives, the loss with
its backward pass, and Adam. The mining's share of the step is the number to watch: the paper's confidence levels
should cost little next to the network. The clips come from the embedded benchmark's training videos, resized up to
the crop.
"""
import argparse
import dataclasses

import torch

from corrmine.affinity import clip_affinity
from corrmine.core import get_device, run_info, write_json
from corrmine.datasets import ClipDataset
from corrmine.encoder import CorrNet
from corrmine.loss import info_nce
from corrmine.negatives import Curriculum, semi_hard_negatives, spread_moments
from corrmine.selection import select_positives
from corrmine.train import preset

from timing import timed


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--batch", type=int, default=2, help="clips per step (the paper: 12-24 over several GPUs)")
    p.add_argument("--data", default="data/bench/YTVOS/train/JPEGImages")
    p.add_argument("--repeat", type=int, default=3)
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

    def mine(mining=cfg.mining):
        a_ = aff.detach()
        pos = select_positives(a_, hw, dts, mining)
        neg = semi_hard_negatives(a_, pos, *cur.bounds())
        return pos, neg, spread_moments(a_, pos, hw, cfg.negatives, cfg.loss.tau)
    t_mine, (pos, neg, _) = timed(mine, dev, a.repeat)
    other = "scaling" if cfg.mining.ot_solver == "log" else "log"  # the same mining with the other Sinkhorn method
    t_mine_other, _ = timed(lambda: mine(dataclasses.replace(cfg.mining, ot_solver=other)), dev, a.repeat)

    def loss_backward():
        opt.zero_grad(set_to_none=True)
        a_ = forward()
        loss, _ = info_nce(a_, pos, neg, cfg.loss.tau)
        loss.backward()
    t_fb, _ = timed(loss_backward, dev, a.repeat)                 # forward again, then the loss and the backward pass
    t_opt, _ = timed(lambda: opt.step(), dev, a.repeat)
    t_bwd = max(t_fb - t_fwd, 0.0)
    step = t_data + t_fwd + t_mine + t_bwd + t_opt
    parts = {"data (1 process)": t_data, "forward": t_fwd, "mining": t_mine, "loss + backward": t_bwd, "optimiser": t_opt}
    info = run_info(dev)
    print(f"{info['gpu'] or info['cpu']} ({info['cpus']} CPUs), torch {info['torch']}, device {dev}")
    print(f"one step at the paper's clip shape: {B} clips x {T} frames x {t.crop}^2, N = {hw[0] * hw[1]}, "
          f"mining {cfg.mining.mining} (Sinkhorn eps {cfg.mining.ot_eps}, up to {cfg.mining.ot_iters} iterations)")
    for name, v in parts.items(): print(f"  {name:18s} {v * 1000:9.1f} ms  {v / step:6.1%}")
    print(f"  {'step':18s} {step * 1000:9.1f} ms; mining / (forward + backward) = {t_mine / (t_fwd + t_bwd):.2f}; "
          f"{B / t_data:.1f} clips/s per data process")
    print(f"  mining with the {other} Sinkhorn method instead of {cfg.mining.ot_solver}: {t_mine_other * 1000:.1f} ms, "
          f"{t_mine_other / (step - t_mine + t_mine_other):.1%} of the step, mining / (forward + backward) = {t_mine_other / (t_fwd + t_bwd):.2f}")
    if dev.type == "cuda": print(f"  peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")
    if a.out: write_json(a.out, dict(parts=parts, step=step, batch=B, frames=T, crop=t.crop, run=info, ot_solver=cfg.mining.ot_solver,
                                    mining_share=t_mine / step, mining_other_solver={other: t_mine_other}))


if __name__ == "__main__":
    main()
