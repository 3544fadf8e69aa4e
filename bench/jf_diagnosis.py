"""Why J&F does not follow matching accuracy during training: the matching split by what label propagation reads.

    python bench/jf_diagnosis.py OUT.jsonl ENCODER [ENCODER ...] [--data data/bench/select]

ENCODER is a checkpoint path or `random-sS` (the random network of seed S). For each encoder, one JSON line with:

- matching to frame 0 (nearest neighbour by cosine similarity), within one cell of the exact match, split by the
  source cell's label in its own frame: background, object, and object cells within one cell of the object's
  boundary; the share of cells whose nearest neighbour in frame 0 carries the same label (what a propagation from
  frame 0 alone needs: the right object, not the right place), per class; and, for the wrong matches, the median
  distance to the true position in cells (near, smooth errors against far, scattered ones);
- DAVIS J&F on the same videos for label propagation under the preset's settings and a few others (frame 0 alone;
  other softmax temperatures), so that a fall can be placed in the features or in the propagation's settings.

The split is by the label at each source cell's centre in the benchmark's annotation of that frame (the same masks
J&F reads); the truth of the match is the scene's exact motion (`load_match_videos`).
"""
import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from corrmine.core import Config
from corrmine.datasets import DavisDataset
from corrmine.encoder import load_encoder
from corrmine.evaluate import frame_features
from corrmine.matching import load_match_videos, nearest_cells
from corrmine.tasks import evaluate

VARIANTS = {"preset": {}, "frame 0 only": {"eval.context": 0}, "temperature 0.02": {"eval.temperature": 0.02},
            "temperature 0.1": {"eval.temperature": 0.1}, "topk 30": {"eval.topk": 30}}

def cell_labels(mask: np.ndarray, centres: torch.Tensor) -> np.ndarray:
    "The label at each cell centre (nearest pixel), 255 (void) read as background."
    H, W = mask.shape
    x = np.clip(np.round(centres[:, 0].numpy()).astype(int), 0, W - 1)
    y = np.clip(np.round(centres[:, 1].numpy()).astype(int), 0, H - 1)
    lab = mask[y, x].astype(int)
    lab[lab == 255] = 0
    return lab

def near_boundary(lab: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    "Cells with a differently labelled cell among their 8 neighbours."
    g = lab.reshape(grid)
    p = np.pad(g, 1, mode="edge")
    out = np.zeros_like(g, dtype=bool)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            out |= p[1 + dy:1 + dy + grid[0], 1 + dx:1 + dx + grid[1]] != g
    return out.flatten()

@torch.no_grad()
def matching_by_label(encoder, videos, davis: DavisDataset) -> dict:
    seqs = {s.name: s for s in davis}
    acc = {k: [0, 0] for k in ("background", "object", "object boundary")}           # correct, scored
    same = {k: [0, 0] for k in ("background", "object")}                             # same label, all source cells
    err = []
    for v in videos:
        f = frame_features(encoder, v.frames, torch.device("cpu")).flatten(2)
        ps = v.pairs["to frame 0"]
        idx = nearest_cells(f[[t for t, _ in ps]], f[[0] * len(ps)])
        true, vis = v.truth["to frame 0"]
        cell = torch.tensor((v.frames.shape[2] / v.grid[1], v.frames.shape[1] / v.grid[0]))
        lab0 = cell_labels(seqs[v.name].mask(0), v.centres)
        for i, (t, _) in enumerate(ps):
            lab = cell_labels(seqs[v.name].mask(t), v.centres)
            bnd = near_boundary(lab, v.grid)
            pred = v.centres[idx[i]]
            d = ((pred - true[i]).abs() / cell)
            ok = (d <= 1).all(-1).numpy() & vis[i].numpy()
            visn = vis[i].numpy()
            for name, sel in (("background", lab == 0), ("object", lab > 0), ("object boundary", (lab > 0) & bnd)):
                acc[name][0] += int(ok[sel].sum()); acc[name][1] += int(visn[sel].sum())
            agree = lab0[idx[i].numpy()] == lab
            for name, sel in (("background", lab == 0), ("object", lab > 0)):
                same[name][0] += int(agree[sel].sum()); same[name][1] += int(sel.sum())
            wrong = visn & ~ok
            err.append(d.max(-1).values.numpy()[wrong])
    err = np.concatenate(err) if err else np.zeros(0)
    return {**{f"f0 acc {k}": c / n for k, (c, n) in acc.items()},
            **{f"f0 same label {k}": c / n for k, (c, n) in same.items()},
            "f0 wrong median cells": float(np.median(err)) if len(err) else float("nan"),
            "f0 wrong within 3 cells": float((err <= 3).mean()) if len(err) else float("nan")}

def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("out"); p.add_argument("encoders", nargs="+")
    p.add_argument("--data", default="data/bench/select")
    p.add_argument("--variants", default=",".join(VARIANTS))
    a = p.parse_args()
    root = Path(a.data)
    done = {json.loads(l)["encoder"] for l in open(a.out)} if Path(a.out).exists() else set()
    videos = load_match_videos(root, (4,), progress=False)
    davis = DavisDataset(root / "DAVIS", "val")
    for name in a.encoders:
        if name in done: continue
        t0 = time.time()
        enc = load_encoder("random", Config().model, int(name.split("-s")[1])) if name.startswith("random") else load_encoder(name)
        rec = {"encoder": name, "data": str(root), **matching_by_label(enc, videos, davis)}
        for v in a.variants.split(","):
            cfg = Config().override({"device": "cpu", **VARIANTS[v]})
            with tempfile.TemporaryDirectory() as tmp:
                m = evaluate(enc, "davis", root / "DAVIS", Path(tmp) / "davis", cfg, settings={"encoder": name}, progress=False)
            rec[f"J&F {v}"], rec[f"J {v}"], rec[f"F {v}"] = m["J&F-Mean"], m["J-Mean"], m["F-Mean"]
        rec["seconds"] = time.time() - t0
        with open(a.out, "a") as fh: fh.write(json.dumps(rec) + "\n")
        print(json.dumps({k: round(x, 3) if isinstance(x, float) else x for k, x in rec.items()}), flush=True)

if __name__ == "__main__":
    main()
