"""Label propagation: corrmine's local + dense computation against the naive dense masked one, in the same run.

    python bench/propagation.py                    # DAVIS-sized: 60 x 107 grid, 21 context frames, 256-d
    python bench/propagation.py --device cuda --out results/bench/propagation-cuda.json

Two inputs, each timed for both computations (on CUDA, where corrmine scores the recent frames in runs, also
against its CPU's tiles on the same device):
- random: random unit features;
- real: the features of a real video, 22 frames panning across scikit-image's bundled photographs at 480 x 856
  pixels, through a random ResNet-18 (res4, stride 8, seed 0; computed once, not timed).
The two computations must keep the same top-k scores for every query in every frame (they depend on the features
alone). Their labels can still differ where keys of different labels tie: exactly (real images have flat regions,
whose features are identical) or within float32 rounding, two computations that order or sum their keys
differently keep different ones among the tied keys, and a changed label travels on to later frames. How many
cells that changes is reported, not required.
Each variant runs in its own process, so that its peak memory (resident set on the CPU, allocated memory on
CUDA) is its own, and propagates one frame untimed first (the libraries' one-time set-up, paid once per process,
not per video). Every frame is timed on its own. A video has 1 + context + extra frames: its first `context`
frames are propagated from a context that still holds copies of frame 0 (the frames before 0), which corrmine
scores once, as frame 0, and the dense reference scores as the protocol lists them; its last `extra` frames have
a full context of frame 0 and 20 distinct recent frames. Three figures per variant: the median time of a
full-context frame (the steady state of a long video, and the speed target), the mean over this video, and the
mean per frame over DAVIS-2017 val's 30 sequence lengths (34 to 104 frames), each frame t weighted by the time
measured here for frame min(t, context + 1). Also times the DAVIS scoring of one
480p sequence (854 x 480, 3 objects, 50 frames), against F computed by the official davis2017-evaluation
toolkit's method (a disk dilation of both boundaries per object and frame), which must give the same values.

It also measures, in the same run, a floor for a full-context frame of any exact method: frame 0's dense product
(every query against every cell of frame 0: nothing to skip; its top-k not counted), plus the in-radius products of
the 20 recent frames at the rate this machine reaches on frame 0's matrix product (written into a buffer allocated
once, as propagation does; no gather, no top-k, no padding counted). The ratio at that floor bounds the speed-up
any exact implementation can show against the dense reference's full-context frames here.
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
import torchvision.transforms.functional as TF
from scipy.ndimage import binary_dilation
from skimage import data
from skimage.morphology import disk
from skimage.transform import resize

from corrmine.core import EvalConfig, ModelConfig, get_device, run_info, write_json
from corrmine.datasets import IMAGENET_MEAN, IMAGENET_STD
from corrmine.encoder import load_encoder
from corrmine.metrics import score_sequence, seg2bmap
from corrmine.propagation import _offsets, propagate, propagate_dense

from davis_val import DAVIS_VAL_LENGTHS
from timing import timed


def real_video(T: int, h: int, w: int) -> torch.Tensor:
    """[T, 256, h, w] L2-normalised features of T frames of 8h x 8w pixels that pan 6 pixels per frame across
    scikit-image's photographs (coffee, chelsea, astronaut and rocket side by side, 8h pixels high), through a random
    ResNet-18 (res4, seed 0)."""
    H, W = 8 * h, 8 * w
    pics = [data.coffee(), data.chelsea(), data.astronaut(), data.rocket()]
    pano = np.concatenate([resize(p, (H, round(p.shape[1] * H / p.shape[0])), anti_aliasing=True) for p in pics], 1)
    if pano.shape[1] < W + 6 * T: raise ValueError(f"a {h} x {w} grid over {T} frames needs a wider panorama than {pano.shape[1]} pixels")
    x = torch.stack([torch.from_numpy(pano[:, 6 * t:6 * t + W]).permute(2, 0, 1).float() for t in range(T)])
    x = TF.normalize(x, IMAGENET_MEAN, IMAGENET_STD)
    enc = load_encoder("random", ModelConfig(), 0)
    with torch.no_grad(): f = torch.cat([enc(x[i:i + 4]) for i in range(0, T, 4)])
    return F.normalize(f, dim=1)


def child(variant: str, a) -> dict:
    "Run one variant ('corrmine' or 'dense') in this process; return each frame's time and the peak memory, save its output and top-k scores."
    dev = get_device(a.device)
    g = torch.Generator().manual_seed(0)
    T = a.context + 1 + a.extra
    if a.features == "random": feats = F.normalize(torch.randn(T, a.dim, a.h, a.w, generator=g), dim=1)
    else: feats = torch.from_numpy(np.load(f"{a.tmp}/real-features.npy"))
    lab = torch.softmax(3 * torch.randn(4, a.h, a.w, generator=g), 0)
    feats, lab = feats.to(dev), lab.to(dev)
    cfg = EvalConfig(context=a.context)
    fn = {"dense": propagate_dense, "corrmine": propagate,
          "corrmine-tiles": lambda *x, **k: propagate(*x, window="tiles", **k)}[variant]
    class Stamps(list):                                          # each frame's top-k scores, and when they came
        def append(self, x):
            if dev.type == "cuda": torch.cuda.synchronize()
            super().append(x); times.append(time.perf_counter())
    fn(feats[:2], lab, cfg)                                      # warm-up, not timed: the libraries' one-time set-up
    if dev.type == "cuda": torch.cuda.reset_peak_memory_stats(); torch.cuda.synchronize()
    times, top = [time.perf_counter()], Stamps()
    out = fn(feats, lab, cfg, scores=top)
    peak = torch.cuda.max_memory_allocated() if dev.type == "cuda" else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    np.save(f"{a.tmp}/{a.features}-{variant}.npy", out.cpu().numpy())
    np.save(f"{a.tmp}/{a.features}-{variant}-scores.npy", torch.stack(top).cpu().numpy())
    frames = np.diff(times)                                      # frame t = 1 .. T-1
    steady = float(np.median(frames[a.context:]))               # frames with 20 distinct recent frames
    davis = sum(frames[:min(n - 1, a.context)].sum() + max(n - 1 - a.context, 0) * steady for n in DAVIS_VAL_LENGTHS)
    return dict(seconds_per_frame=steady, video_seconds_per_frame=float(frames.mean()),
                davis_val_seconds_per_frame=float(davis / sum(n - 1 for n in DAVIS_VAL_LENGTHS)),
                frame_seconds=frames.tolist(), peak_bytes=peak)


def compare(a, tmp: str) -> dict:
    "Time both computations on one input (`a.features`), in their own processes, and compare their outputs."
    if a.features == "real": np.save(f"{tmp}/real-features.npy", real_video(a.context + 1 + a.extra, a.h, a.w).numpy())
    res, args = {}, ["--h", a.h, "--w", a.w, "--dim", a.dim, "--context", a.context, "--extra", a.extra, "--device", a.device]
    variants = ("corrmine", "dense") + (("corrmine-tiles",) if get_device(a.device).type == "cuda" else ())
    for v in variants:
        r = subprocess.run([sys.executable, __file__, "--child", v, "--tmp", tmp, "--features", a.features, *map(str, args)],
                           capture_output=True, text=True)
        if r.returncode: raise SystemExit(r.stderr)
        res[v] = json.loads(r.stdout.strip().splitlines()[-1])
    out = {v: np.load(f"{tmp}/{a.features}-{v}.npy")[1:] for v in res}                 # frame 0 is given
    top = {v: np.load(f"{tmp}/{a.features}-{v}-scores.npy") for v in res}
    c, d = res["corrmine"], res["dense"]
    differ = np.abs(out["corrmine"] - out["dense"]).max(1) > 1e-5                      # [T-1, h, w]
    row = dict(corrmine=c, dense=d, speed_ratio=d["seconds_per_frame"] / c["seconds_per_frame"],
               video_ratio=d["video_seconds_per_frame"] / c["video_seconds_per_frame"],
               davis_val_ratio=d["davis_val_seconds_per_frame"] / c["davis_val_seconds_per_frame"],
               max_score_difference=float(np.abs(top["corrmine"] - top["dense"]).max()),
               max_difference=float(np.abs(out["corrmine"] - out["dense"]).max()), cells=int(differ.size),
               cells_differing=int(differ.sum()), first_frame_differing=int(differ.any((1, 2)).argmax()) + 1 if differ.any() else None,
               label_agreement=float((out["corrmine"].argmax(1) == out["dense"].argmax(1)).mean()))
    print(f"  {a.features} features, full context (median of frames {a.context + 1}-{a.context + a.extra}): corrmine "
          f"{c['seconds_per_frame']:.2f} s/frame, peak {c['peak_bytes'] / 2**20:.0f} MiB | dense {d['seconds_per_frame']:.2f} s/frame, "
          f"peak {d['peak_bytes'] / 2**20:.0f} MiB | speed ratio {row['speed_ratio']:.1f}x\n"
          f"    this video's {len(c['frame_seconds'])} frames: corrmine {c['video_seconds_per_frame']:.2f} s/frame, dense "
          f"{d['video_seconds_per_frame']:.2f} ({row['video_ratio']:.1f}x); over DAVIS-2017 val's sequence lengths: corrmine "
          f"{c['davis_val_seconds_per_frame']:.2f} s/frame, dense {d['davis_val_seconds_per_frame']:.2f} ({row['davis_val_ratio']:.1f}x)\n"
          f"    each frame, corrmine: {' '.join(f'{x:.2f}' for x in c['frame_seconds'])}\n"
          f"    each frame, dense:    {' '.join(f'{x:.2f}' for x in d['frame_seconds'])}\n"
          f"    top-k scores of every query and frame: max |difference| {row['max_score_difference']:.1e}; outputs: "
          f"{row['cells_differing']} of {row['cells']} cells differ"
          f"{' (the first in frame %d)' % row['first_frame_differing'] if differ.any() else ''}, max |difference| "
          f"{row['max_difference']:.1e}, same label in {row['label_agreement']:.3%} of the cells", flush=True)
    if "corrmine-tiles" in res:                                  # on CUDA: the CPU's tiles, for comparison with the runs
        t = res["corrmine-tiles"]
        row["tiles"] = dict(t, max_score_difference=float(np.abs(top["corrmine-tiles"] - top["dense"]).max()))
        print(f"    the CPU's tiles on this device: {t['seconds_per_frame']:.3f} s/frame with a full context "
              f"({d['seconds_per_frame'] / t['seconds_per_frame']:.1f}x the dense reference), peak {t['peak_bytes'] / 2**20:.0f} MiB; "
              f"max |top-k difference| {row['tiles']['max_score_difference']:.1e}", flush=True)
    return row


def floor(a) -> dict:
    "A lower bound on an exact propagation's seconds per frame on this device (see the module's docstring)."
    dev = get_device(a.device)
    g = torch.Generator().manual_seed(1)
    q, k = (F.normalize(torch.randn(a.h * a.w, a.dim, generator=g), dim=1).to(dev) for _ in range(2))
    s = q.new_empty(q.shape[0], k.shape[0])                                      # allocated once: no page faults timed
    t_mm, _ = timed(lambda: torch.mm(q, k.T, out=s), dev, 5)
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
    p.add_argument("--extra", type=int, default=4, help="frames propagated with a full context of distinct frames (at least 1)")
    p.add_argument("--device", default="auto"); p.add_argument("--out")
    p.add_argument("--child", help=argparse.SUPPRESS); p.add_argument("--tmp", help=argparse.SUPPRESS)
    p.add_argument("--features", nargs="+", choices=("random", "real"), default=["random", "real"])
    a = p.parse_args()
    if a.child:
        a.features = a.features[0]
        print(json.dumps(child(a.child, a))); return
    if "real" in a.features and a.dim != 256: p.error("real features are ResNet-18's res4: 256-d")
    if a.extra < 1: p.error(f"--extra {a.extra}: the full-context figures need at least one frame with a full context")
    print(f"{a.h}x{a.w} grid, {a.context + 1} context frames, {a.dim}-d, {get_device(a.device)}:", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        rows = {f: compare(argparse.Namespace(**{**vars(a), "features": f}), tmp) for f in a.features}
    d = rows["real" if "real" in rows else "random"]["dense"]                  # the floor's ratio: against real features
    fl = floor(a)
    print(f"  floor of an exact method, full context: frame 0's product {fl['frame0_seconds']:.2f} s + the recent frames' "
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
    if a.out: write_json(a.out, dict(grid=[a.h, a.w], dim=a.dim, context=a.context, **rows, floor=fl,
                                     floor_ratio=d["seconds_per_frame"] / fl["seconds_per_frame"],
                                     davis_scoring_seconds_50_frames=ds, toolkit_method_f_seconds=dd, run=run_info(get_device(a.device))))


if __name__ == "__main__":
    main()
