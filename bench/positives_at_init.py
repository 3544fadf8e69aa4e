"""How many anchors the mining leaves a positive at the first step, and how many of those are right, for both presets.

    python bench/positives_at_init.py                    # both presets' networks at initialisation
    python bench/positives_at_init.py --out results/bench/positives-at-init-cpu.json

A random network's features are alike everywhere (cosine affinities around 0.9 on the embedded benchmark), so an
entropic transport plan at a large epsilon spreads every row thin and no entry reaches the threshold: the full
mining then gives no positive at all, and training starves from its first step. Two measurements:

- `synthetic-cpu`: 6 training clips of the preset (the share of anchors with a positive) and the probe videos at
  their own size (the share and the positives' precision within one cell of the exact match), for FB alone, FB + TC
  and FB + OT + TC at several epsilons;
- `paper`: clips of the `paper` preset's shape, 256 x 256 crops (a random resized crop of 50-100% of the frame, as
  the preset draws it) of a target and its 4 following frames, cut from the probe videos upsampled `--scale` times
  (the benchmark's frames are 128 x 224, smaller than such crops), through the `paper` preset's network at
  initialisation (ResNet-18 res4, a 32 x 32 grid): share and precision within one cell against the exact truth of
  the scene, for the preset's mining and the alternatives, the re-implementation's settings among them (cost from the
  soft forward-backward score, epsilon 0.01, threshold 0.9).
"""
import argparse
import time
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F

from corrmine.affinity import clip_affinity
from corrmine.core import run_info, write_json
from corrmine.datasets import IMAGENET_MEAN, IMAGENET_STD, ClipDataset, DavisDataset
from corrmine.encoder import CorrNet
from corrmine.matching import cell_centres, load_match_videos
from corrmine.selection import select_positives
from corrmine.synth import correspond, read_scene
from corrmine.train import PRESETS, preset, probe_precision
from corrmine.truth import cell_index, positive_precision

SYNTHETIC = [dict(mining="fb"), dict(mining="fb+tc"), dict(ot_eps=0.05, ot_iters=30), dict(ot_eps=0.02, ot_iters=50),
             dict(ot_eps=0.01, ot_iters=100), dict(ot_eps=0.005, ot_iters=200)]
PAPER = [dict(mining="fb"), dict(mining="fb+tc"),
         dict(ot_cost="affinity", ot_eps=0.05, ot_thresh=0.5, ot_iters=30),             # the preset's mining before
         dict(ot_cost="affinity", ot_eps=0.01, ot_thresh=0.5, ot_iters=100), dict(ot_cost="affinity", ot_eps=0.005, ot_thresh=0.5, ot_iters=200),
         dict(ot_cost="fb", ot_eps=0.01, ot_thresh=0.9, ot_iters=30),                       # the re-implementation's, at 30 and 100 iterations
         dict(ot_cost="fb", ot_eps=0.01, ot_thresh=0.9, ot_iters=100), dict(ot_cost="fb", ot_eps=0.01, ot_thresh=0.5, ot_iters=100),
         dict(ot_cost="fb", ot_eps=0.005, ot_thresh=0.5, ot_iters=200)]                    # the preset now, and a smaller epsilon


def mining_overrides(setting: dict, base) -> dict:
    "A row of the tables as config overrides (the preset's own mining for what the row leaves out)."
    return {f"mining.{k}": v for k, v in {"mining": "fb+ot+tc" if "ot_eps" in setting else base.mining, **setting}.items()}


def label(cfg) -> str:
    m = cfg.mining
    if "ot" not in m.parts: return f"{m.mining:9s}" + " " * 44
    return f"{m.mining:9s} cost {m.ot_cost:8s} eps {m.ot_eps:<6} thresh {m.ot_thresh:<4} iters {m.ot_iters:<4}"


def mine(cfg, setting: dict, aff, hw, dts):
    "One row's mining on the affinities: its configuration, the positives, the seconds it took and the row's settings."
    over = mining_overrides(setting, cfg.mining)
    c = cfg.override(over)
    t0 = time.perf_counter()
    pos = select_positives(aff, hw, dts, c.mining)
    return c, pos, time.perf_counter() - t0, {k.split(".")[1]: v for k, v in over.items()}


def synthetic(clips: int) -> list[dict]:
    cfg = preset("synthetic-cpu")
    torch.manual_seed(cfg.seed)
    net = CorrNet(cfg.model).eval()
    data = ClipDataset(cfg.train.data, cfg.train, seed=cfg.seed)
    items = [data[i] for i in range(clips)]
    x, dts = torch.stack([c["frames"] for c in items]), torch.stack([c["dts"] for c in items])
    with torch.no_grad(): f = net(x.flatten(0, 1)).unflatten(0, x.shape[:2])
    aff = clip_affinity(f)
    gaps = tuple(sorted(set(cfg.train.frame_gaps)))
    probe = load_match_videos(cfg.train.probe, gaps, progress=False)
    print(f"synthetic-cpu, random init, seed {cfg.seed}: affinity mean {aff.mean():.3f}, std {aff.std():.3f}; {clips} clips, "
          f"{len(probe)} probe videos at gaps {gaps}")
    rows = []
    for s in SYNTHETIC:
        c, pos, secs, row = mine(cfg, s, aff, tuple(f.shape[-2:]), dts)   # no crop jitter here: windows as in the probe
        pp = probe_precision(net, probe, gaps, c, torch.device("cpu"))
        rows.append(dict(preset="synthetic-cpu", **row,
                         train_share=float(pos.any(-1).float().mean()), share=pp["share"], precision=pp["precision"], seconds=secs))
        r = rows[-1]
        print(f"  {label(c)}  anchors with a positive: training {r['train_share']:.4f}, probe {r['share']:.4f};"
              f"  precision {r['precision']:.3f};  mining {secs * 1000:.0f} ms")
    return rows


def paper_clips(root: str, scale: int, per_video: int, seed: int):
    "Clips of the paper preset's shape from the probe videos upsampled `scale` times, with the exact truth of each pair."
    cfg = preset("paper")
    t, S, K = cfg.train, cfg.train.crop, cfg.train.n_refs
    crops = SimpleNamespace(cfg=SimpleNamespace(crop_scale=t.crop_scale, crop_jitter=0.0))   # the preset's crop rule, one box a clip
    g = torch.Generator().manual_seed(seed)
    h = w = S // 8
    mean, std = torch.tensor(IMAGENET_MEAN)[:, None, None], torch.tensor(IMAGENET_STD)[:, None, None]
    xs, truths = [], []
    for seq in DavisDataset(f"{root}/DAVIS"):
        layers, (H, W), n = read_scene(f"{root}/GT/{seq.name}/scene.json")
        for _ in range(per_video):
            t0 = int(torch.randint(0, n - K, (1,), generator=g))
            top, left, bh, bw = ClipDataset._crops(crops, g, H * scale, W * scale, 1)[0]
            frames = torch.from_numpy(np.stack([seq.frame(t0 + k) for k in range(K + 1)])).permute(0, 3, 1, 2).float() / 255
            big = F.interpolate(frames, scale_factor=scale, mode="bilinear", align_corners=False, antialias=False)
            xs.append((F.interpolate(big[..., top:top + bh, left:left + bw], size=(S, S), mode="bilinear", align_corners=False) - mean) / std)
            # the target cells' centres in the original frame, their exact matches there, and those in the crop's grid
            c = cell_centres((h, w), (S, S))
            src = (torch.stack([left + (c[:, 0] + 0.5) * bw / S, top + (c[:, 1] + 0.5) * bh / S], 1) / scale) - 0.5
            match = []
            for k in range(1, K + 1):
                dst, hidden = correspond(layers, t0, t0 + k, src, (H, W))
                crop = torch.stack([((dst[:, 0] + 0.5) * scale - left) * S / bw, ((dst[:, 1] + 0.5) * scale - top) * S / bh], 1) - 0.5
                match.append(cell_index(crop, ~hidden, (h, w), (S, S)))
            truths.append(torch.stack(match))
    return torch.stack(xs), torch.stack(truths)                          # [C, K+1, 3, S, S], [C, K, N]


def paper(root: str, scale: int, per_video: int) -> list[dict]:
    cfg = preset("paper")
    torch.manual_seed(cfg.seed)
    net = CorrNet(cfg.model).eval()
    x, truth = paper_clips(root, scale, per_video, cfg.seed)
    with torch.no_grad(): f = torch.cat([net(c) for c in x]).unflatten(0, x.shape[:2])
    aff = clip_affinity(f)
    K = x.shape[1] - 1
    print(f"paper, random init, seed {cfg.seed}: {len(x)} clips of {K + 1} frames, {x.shape[-1]}^2 crops of the probe videos "
          f"upsampled {scale}x; grid {tuple(f.shape[-2:])}; affinity mean {aff.mean():.3f}, std {aff.std():.3f}")
    rows = []
    for s in PAPER:
        c, pos, secs, row = mine(cfg, s, aff, tuple(f.shape[-2:]), list(range(1, K + 1)))
        p = positive_precision(pos, truth, w=f.shape[-1], tol=1)
        rows.append(dict(preset="paper", **row,
                         share=p["share"], precision=p["precision"], seconds=secs,
                         share_by_gap=[float(pos[:, k].any(-1).float().mean()) for k in range(K)]))
        r = rows[-1]
        print(f"  {label(c)}  anchors with a positive {r['share']:.4f}; precision {r['precision']:.3f};"
              f"  by gap {' '.join(f'{v:.3f}' for v in r['share_by_gap'])};  mining {secs:.1f} s")
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clips", type=int, default=6, help="training clips of the synthetic-cpu preset")
    p.add_argument("--scale", type=int, default=2, help="upsampling of the probe videos for the paper preset's crops")
    p.add_argument("--per-video", type=int, default=3, help="paper-shaped clips cut from each probe video")
    p.add_argument("--only", choices=["synthetic-cpu", "paper"], help="measure one preset")
    p.add_argument("--out", help="write the rows as JSON here")
    a = p.parse_args()
    torch.set_grad_enabled(False)
    rows = []
    if a.only in (None, "synthetic-cpu"): rows += synthetic(a.clips)
    if a.only in (None, "paper"): rows += paper(PRESETS["synthetic-cpu"]["train.probe"].value, a.scale, a.per_video)
    if a.out: write_json(a.out, dict(rows=rows, scale=a.scale, per_video=a.per_video, run=run_info("cpu")))


if __name__ == "__main__":
    main()
