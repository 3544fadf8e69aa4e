"""DAVIS-val-sized evaluation, end to end: 30 sequences, 1999 frames at 854 x 480, features included.

    python bench/davis_val.py --device cuda --out results/bench/davis-val-cuda.json     # the full size
    python bench/davis_val.py --device cpu --sequences 2 --frames 6                     # a small slice, to try it

The real DAVIS-2017 val cannot be downloaded here, so this builds a stand-in of its exact size and layout: the
embedded benchmark's 30 DAVIS-style sequences, resized to 854 x 480 and played back and forth to the real val
sequences' lengths (34 to 104 frames, 1999 in all). Then it times the two halves of the one evaluation call,
`corrmine.tasks.evaluate`, on a randomly initialised ResNet-18 (res4, stride 8: a 60 x 107 grid):
- predict: reading the JPEGs, encoding every frame, propagating the first masks with the CRW protocol (frame 0 plus
  20 recent frames, radius 12, top-10), writing the palette PNGs and the overlays;
- score: J and F of every object and frame, from the PNGs (in threads, one per CPU).
Reading the next sequence and writing the previous one run in threads beside the encoding and the propagation, so
the parts of predict overlap; each part's busy time is also reported (summed over its threads; on CUDA the
encoding and the propagation are synchronised before their clocks stop), to show which one bounds the total.
Building the stand-in is not timed. The scores mean nothing (the encoder is untrained); the times do.
"""
import argparse
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import corrmine.datasets
import corrmine.evaluate
from corrmine.core import Config, get_device, run_info, write_json
from corrmine.datasets import DavisDataset
from corrmine.encoder import load_encoder
from corrmine.evaluate import predict_davis
from corrmine.formats import read_index_png, read_rgb, write_palette_png
from corrmine.tasks import score

# the frame counts of DAVIS-2017 val's 30 sequences, in the order of its list: 1999 frames
DAVIS_VAL_LENGTHS = [69, 50, 80, 84, 90, 75, 40, 104, 90, 60, 66, 52, 50, 90, 78, 50, 81, 34, 50, 47,
                     49, 50, 79, 40, 80, 100, 79, 43, 40, 99]
SIZE = (854, 480)  # (W, H) of DAVIS 480p


def back_and_forth(n_src: int, n: int) -> list[int]:
    "Frame indices 0, 1, ..., n_src - 1, n_src - 2, ..., 1, 0, 1, ... of length n: a clip played back and forth."
    period = max(1, 2 * (n_src - 1))
    return [min(i % period, period - i % period) for i in range(n)]


def _build_sequence(job) -> int:
    src, dst, name, out, n = job
    frames = sorted((src / "JPEGImages" / "480p" / name).glob("*.jpg"))
    masks = sorted((src / "Annotations" / "480p" / name).glob("*.png"))
    (dst / "JPEGImages" / "480p" / out).mkdir(parents=True); (dst / "Annotations" / "480p" / out).mkdir(parents=True)
    for t, i in enumerate(back_and_forth(len(frames), n)):
        Image.fromarray(read_rgb(frames[i])).resize(SIZE, Image.BILINEAR).save(dst / "JPEGImages" / "480p" / out / f"{t:05d}.jpg", quality=90)
        write_palette_png(dst / "Annotations" / "480p" / out / f"{t:05d}.png",
                          np.asarray(Image.fromarray(read_index_png(masks[i])).resize(SIZE, Image.NEAREST)))
    return n


def build(src: Path, dst: Path, lengths: list[int], workers: int) -> DavisDataset:
    "The stand-in, in DAVIS-2017's layout: source sequence i % 30 at 854 x 480, played back and forth to `lengths[i]` frames."
    names = [s.name for s in DavisDataset(src).sequences]
    out = [f"val{i:02d}" for i in range(len(lengths))]
    (dst / "ImageSets" / "2017").mkdir(parents=True)
    (dst / "ImageSets" / "2017" / "val.txt").write_text("".join(f"{n}\n" for n in out))
    jobs = [(src, dst, names[i % len(names)], o, n) for i, (o, n) in enumerate(zip(out, lengths))]
    with ProcessPoolExecutor(workers) as ex: list(ex.map(_build_sequence, jobs))
    return DavisDataset(dst)


class PartClock:
    "Busy seconds of named functions, summed over every thread that calls them (the patching is undone on exit)."
    def __init__(self, dev: torch.device, parts: dict):  # name -> (module, attribute, synchronise CUDA after it)
        self.dev, self.parts, self.seconds, self.lock = dev, parts, dict.fromkeys(parts, 0.0), threading.Lock()

    def __enter__(self):
        self.saved = {}
        for name, (mod, attr, sync) in self.parts.items():
            fn = self.saved[name] = getattr(mod, attr)
            def timed_fn(*a, _fn=fn, _name=name, _sync=sync, **k):
                t0 = time.perf_counter()
                r = _fn(*a, **k)
                if _sync and self.dev.type == "cuda": torch.cuda.synchronize()
                with self.lock: self.seconds[_name] += time.perf_counter() - t0
                return r
            setattr(mod, attr, timed_fn)
        return self

    def __exit__(self, *exc):
        for name, (mod, attr, _) in self.parts.items(): setattr(mod, attr, self.saved[name])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--src", default="data/bench/DAVIS", help="the embedded benchmark's DAVIS folder")
    p.add_argument("--device", default="auto")
    p.add_argument("--sequences", type=int, default=30, help="how many of the 30 sequences")
    p.add_argument("--frames", type=int, help="cap every sequence at this many frames (default: the real lengths)")
    p.add_argument("--workers", type=int, default=8, help="processes that build the stand-in")
    p.add_argument("--out", help="write the numbers as JSON here")
    a = p.parse_args()
    dev = get_device(a.device)
    lengths = [min(n, a.frames or n) for n in DAVIS_VAL_LENGTHS[:a.sequences]]
    cfg = Config().override([f"device={dev.type}"])
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        data = build(Path(a.src), Path(tmp) / "DAVIS", lengths, a.workers)
        t_build = time.perf_counter() - t0
        print(f"stand-in built in {t_build:.1f} s: {len(lengths)} sequences, {sum(lengths)} frames", flush=True)
        enc = load_encoder("random", cfg.model, 0)
        if dev.type == "cuda": torch.cuda.reset_peak_memory_stats(); torch.cuda.synchronize()
        parts = {"read the JPEGs": (corrmine.datasets, "read_rgb", False),
                 "encode": (corrmine.evaluate, "frame_features", True),
                 "propagate": (corrmine.evaluate, "propagate", True),
                 "upsample to masks": (corrmine.evaluate, "labels_to_mask", False),
                 "write the PNGs": (corrmine.evaluate, "write_palette_png", False),
                 "write the overlays": (corrmine.evaluate, "save_overlay", False)}
        with PartClock(dev, parts) as clock:
            t0 = time.perf_counter()
            predict_davis(enc, data, Path(tmp) / "pred", cfg, {"encoder": "random"}, progress=False)
            if dev.type == "cuda": torch.cuda.synchronize()
            t_pred = time.perf_counter() - t0
        print(f"predicted in {t_pred:.1f} s", flush=True)
        t0 = time.perf_counter()
        metrics = score("davis", data, Path(tmp) / "pred", progress=False)
        t_score = time.perf_counter() - t0
    frames = sum(lengths)
    res = {"sequences": len(lengths), "frames": frames, "size": list(SIZE), "grid": [60, 107], "eval": cfg.to_dict()["eval"],
           "build_s": t_build, "predict_s": t_pred, "score_s": t_score, "total_s": t_pred + t_score,
           "predict_frames_per_s": frames / t_pred,
           "predict_parts_busy_s": clock.seconds, "J&F": metrics["J&F-Mean"],
           "peak_gpu_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if dev.type == "cuda" else None,
           "run": run_info(dev)}
    info = res["run"]
    print(f"{info['gpu'] or info['cpu']} ({info['cpus']} CPUs), torch {info['torch']}, device {dev}")
    print(f"DAVIS-val-sized evaluation: {len(lengths)} sequences, {frames} frames at {SIZE[0]} x {SIZE[1]}, random ResNet-18 (60 x 107 grid)")
    print(f"  predict (read, encode, propagate, write) {t_pred:7.1f} s   {frames / t_pred:6.1f} frames/s")
    for name, sec in clock.seconds.items(): print(f"    {name:<38}{sec:7.1f} s busy")
    print(f"  score (J and F)                           {t_score:7.1f} s")
    print(f"  total                                     {t_pred + t_score:7.1f} s   (building the stand-in: {t_build:.1f} s, not counted)")
    if res["peak_gpu_memory_gib"] is not None: print(f"  peak GPU memory {res['peak_gpu_memory_gib']:.2f} GiB")
    if a.out: write_json(a.out, res)


if __name__ == "__main__":
    main()
