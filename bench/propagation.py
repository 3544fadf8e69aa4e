"""Label propagation: corrmine's local + dense computation against the naive dense masked one, in the same run.

    python bench/propagation.py                    # DAVIS-sized: 60 x 107 grid, 21 context frames, 256-d
    python bench/propagation.py --device cuda --out results/bench/propagation-cuda.json

Each variant runs in its own process, so that its peak memory (resident set on the CPU, allocated memory
on CUDA) is its own. The video has 1 + context frames, so the last frame is propagated from a full context
of frame 0 and 20 recent frames; the time reported is per propagated frame. Outputs are compared. Also times
the DAVIS scoring of one 480p sequence (854 x 480, 3 objects, 50 frames), against F computed by the official
davis2017-evaluation toolkit's method (a disk dilation of both boundaries per object and frame), which must give
the same values.

It also measures, in the same run, a floor for any exact method: frame 0's dense product (every query against
every cell of frame 0: nothing to skip; its top-k not counted), plus the in-radius products of the recent frames at the
rate this machine reaches on frame 0's matrix product (no gather, no top-k, no padding counted). The ratio at
that floor bounds the speed-up any exact implementation can show against the dense reference here.
"""
import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import binary_dilation
from skimage.morphology import disk

from corrmine.core import EvalConfig, get_device, run_info, write_json
from corrmine.metrics import score_sequence, seg2bmap
from corrmine.propagation import _offsets, propagate, propagate_dense

from timing import timed


def child(variant: str, a) -> dict:
    "Run one variant in this process; print JSON with its time, peak memory and a digest of its output."
    dev = get_device(a.device)
    g = torch.Generator().manual_seed(0)
    T = a.context + 1 + a.extra
    feats = F.normalize(torch.randn(T, a.dim, a.h, a.w, generator=g), dim=1).to(dev)
    lab = torch.softmax(3 * torch.randn(4, a.h, a.w, generator=g), 0).to(dev)
    cfg = EvalConfig(context=a.context)
    fn = propagate if variant == "corrmine" else propagate_dense
    if dev.type == "cuda": torch.cuda.reset_peak_memory_stats(); torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = fn(feats, lab, cfg)
    if dev.type == "cuda": torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated() if dev.type == "cuda" else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    np.save(a.tmp + f"/{variant}.npy", out[-a.extra - 1:].float().cpu().numpy())
    return dict(seconds_per_frame=dt / (T - 1), peak_bytes=peak)


def floor(a) -> dict:
    "A lower bound on an exact propagation's seconds per frame on this device (see the module's docstring)."
    dev = get_device(a.device)
    g = torch.Generator().manual_seed(1)
    q, k = (F.normalize(torch.randn(a.h * a.w, a.dim, generator=g), dim=1).to(dev) for _ in range(2))
    t_mm, _ = timed(lambda: q @ k.T, dev, 5)
    rate = 2 * (a.h * a.w) ** 2 * a.dim / t_mm                                  # flop/s on frame 0's product
    _, oy, ox = _offsets(EvalConfig().radius, "cpu")                             # the in-radius offsets propagation uses
    pairs = sum(max(a.h - abs(dy), 0) * max(a.w - abs(dx), 0) for dy, dx in zip(oy.tolist(), ox.tolist()))
    flop = 2 * pairs * a.context * a.dim                                        # query-key pairs inside the grid
    return dict(frame0_seconds=t_mm, gflops=rate / 1e9, window_gflop=flop / 1e9,
                window_seconds=flop / rate, seconds_per_frame=t_mm + flop / rate)


def dilation_f(gt: np.ndarray, pred: np.ndarray, bound_th: float = 0.008) -> np.ndarray:
    """F by davis2017-evaluation's method, boundaries dilated with skimage's disk, per object and frame [K, T-2]
    (the toolkit calls skimage's binary_dilation, deprecated in scikit-image 0.26; scipy's is the same operation)."""
    r = int(np.ceil(bound_th * np.linalg.norm(gt.shape[1:])))
    se = disk(r).astype(bool)
    out = np.zeros((int(gt[0].max()), len(gt) - 2))
    for o in range(1, out.shape[0] + 1):
        for i, t in enumerate(range(1, len(gt) - 1)):
            fb, gb = seg2bmap(pred[t] == o), seg2bmap(gt[t] == o)
            fd, gd = binary_dilation(fb, se), binary_dilation(gb, se)
            nf, ng = fb.sum(), gb.sum()
            if nf == 0 and ng == 0: p = rc = 1.0
            elif nf == 0: p, rc = 1.0, 0.0
            elif ng == 0: p, rc = 0.0, 1.0
            else: p, rc = (fb & gd).sum() / nf, (gb & fd).sum() / ng
            out[o - 1, i] = 0.0 if p + rc == 0 else 2 * p * rc / (p + rc)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--h", type=int, default=60); p.add_argument("--w", type=int, default=107)
    p.add_argument("--dim", type=int, default=256); p.add_argument("--context", type=int, default=20)
    p.add_argument("--extra", type=int, default=1, help="frames propagated after the context is full")
    p.add_argument("--device", default="auto"); p.add_argument("--out")
    p.add_argument("--child", help=argparse.SUPPRESS); p.add_argument("--tmp", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        print(json.dumps(child(a.child, a))); return
    with tempfile.TemporaryDirectory() as tmp:
        res = {}
        for v in ("corrmine", "dense"):
            r = subprocess.run([sys.executable, __file__, "--child", v, "--tmp", tmp] + sys.argv[1:], capture_output=True, text=True)
            if r.returncode: raise SystemExit(r.stderr)
            res[v] = json.loads(r.stdout.strip().splitlines()[-1])
        diff = float(np.abs(np.load(f"{tmp}/corrmine.npy") - np.load(f"{tmp}/dense.npy")).max())
    c, d = res["corrmine"], res["dense"]
    print(f"{a.h}x{a.w} grid, {a.context + 1} context frames, {a.dim}-d, {get_device(a.device)}:")
    print(f"  corrmine {c['seconds_per_frame']:.2f} s/frame, peak {c['peak_bytes'] / 2**20:.0f} MiB | dense {d['seconds_per_frame']:.2f} s/frame, "
          f"peak {d['peak_bytes'] / 2**20:.0f} MiB | speed ratio {d['seconds_per_frame'] / c['seconds_per_frame']:.1f}x | max |difference| {diff:.1e}")
    fl = floor(a)
    print(f"  floor of an exact method: frame 0's product {fl['frame0_seconds']:.2f} s + the recent frames' "
          f"in-radius products ({fl['window_gflop']:.1f} GFLOP at the {fl['gflops']:.0f} GFLOP/s of frame 0's product) "
          f"{fl['window_seconds']:.2f} s = {fl['seconds_per_frame']:.2f} s/frame, no top-k counted: at most "
          f"{d['seconds_per_frame'] / fl['seconds_per_frame']:.1f}x the dense reference")
    # DAVIS scoring of one 480p sequence
    yy, xx = np.mgrid[:480, :854]
    gt = np.zeros((50, 480, 854), np.uint8)
    for o, (cy, cx, r) in enumerate([(200, 300, 80), (300, 600, 60), (120, 700, 40)], 1):
        for t in range(50): gt[t][(yy - cy - t) ** 2 + (xx - cx - 2 * t) ** 2 < r ** 2] = o
    pred = np.roll(gt, 3, axis=2)
    t0 = time.perf_counter(); J, Fm = score_sequence(gt, pred); ds = time.perf_counter() - t0
    t0 = time.perf_counter(); Fd = dilation_f(gt, pred); dd = time.perf_counter() - t0
    print(f"  DAVIS scoring: {ds:.2f} s for one 854x480 sequence of 50 frames and 3 objects (J and F); the F of the "
          f"toolkit's method (skimage disk dilation per frame) alone: {dd:.2f} s ({dd / ds:.1f}x); max |F difference| {np.abs(Fm - Fd).max():.1e}")
    if a.out: write_json(a.out, dict(grid=[a.h, a.w], dim=a.dim, context=a.context, corrmine=c, dense=d,
                                     speed_ratio=d["seconds_per_frame"] / c["seconds_per_frame"], max_difference=diff, floor=fl,
                                     floor_ratio=d["seconds_per_frame"] / fl["seconds_per_frame"],
                                     davis_scoring_seconds_50_frames=ds, toolkit_method_f_seconds=dd, run=run_info(get_device(a.device))))


if __name__ == "__main__":
    main()
