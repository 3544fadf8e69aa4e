"""How many anchors the mining leaves a positive at the first step, by Sinkhorn's epsilon.

    python bench/positives_at_init.py                    # the synthetic-cpu preset's network at initialisation
    python bench/positives_at_init.py --out results/bench/positives-at-init-cpu.json

A random network's features are alike everywhere (cosine affinities around 0.9 on the embedded benchmark), so an
entropic transport plan at a large epsilon spreads every row thin and no entry reaches the threshold: the full
mining then gives no positive at all, and training starves. This measures, at initialisation, the share of anchors
with a positive and the positives' precision on the probe videos (within one cell of the exact match), for FB
alone, FB + TC, and FB + OT + TC at several epsilons, on 6 training clips of the `synthetic-cpu` preset.
"""
import argparse
import time

import torch

from corrmine.affinity import clip_affinity
from corrmine.core import run_info, write_json
from corrmine.datasets import ClipDataset
from corrmine.encoder import CorrNet
from corrmine.matching import load_match_videos
from corrmine.selection import select_positives
from corrmine.train import preset, probe_precision

SETTINGS = [("fb", 0.05, 30), ("fb+tc", 0.05, 30), ("fb+ot+tc", 0.05, 30), ("fb+ot+tc", 0.02, 50),
            ("fb+ot+tc", 0.01, 100), ("fb+ot+tc", 0.005, 200)]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clips", type=int, default=6)
    p.add_argument("--out", help="write the rows as JSON here")
    a = p.parse_args()
    cfg = preset("synthetic-cpu")
    torch.manual_seed(cfg.seed)
    net = CorrNet(cfg.model).eval()
    data = ClipDataset(cfg.train.data, cfg.train, seed=cfg.seed)
    clips = [data[i] for i in range(a.clips)]
    x, dts = torch.stack([c["frames"] for c in clips]), torch.stack([c["dts"] for c in clips])
    with torch.no_grad(): f = net(x.flatten(0, 1)).unflatten(0, x.shape[:2])
    aff = clip_affinity(f)
    gaps = tuple(sorted(set(cfg.train.frame_gaps)))
    probe = load_match_videos(cfg.train.probe, gaps, progress=False)
    print(f"random init, seed {cfg.seed}: affinity mean {aff.mean():.3f}, std {aff.std():.3f}; {a.clips} clips, "
          f"{len(probe)} probe videos at gaps {gaps}")
    rows = []
    for mining, eps, iters in SETTINGS:
        c = cfg.override({"mining.mining": mining, "mining.ot_eps": eps, "mining.ot_iters": iters})
        t0 = time.perf_counter()
        pos = select_positives(aff, tuple(f.shape[-2:]), dts, c.mining)
        secs = time.perf_counter() - t0
        pp = probe_precision(net, probe, gaps, c, torch.device("cpu"))
        rows.append(dict(mining=mining, ot_eps=eps, ot_iters=iters, train_share=float(pos.any(-1).float().mean()),
                         probe_share=pp["share"], probe_precision=pp["precision"], seconds=secs))
        r = rows[-1]
        ot = f"eps {eps:<5} iters {iters:<3}" if "ot" in mining else " " * 20
        print(f"{mining:9s} {ot}  anchors with a positive: training {r['train_share']:.4f}, probe {r['probe_share']:.4f};"
              f"  probe precision {r['probe_precision']:.3f};  mining {secs * 1000:.0f} ms")
    if a.out: write_json(a.out, dict(rows=rows, run=run_info("cpu")))


if __name__ == "__main__":
    main()
