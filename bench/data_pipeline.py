"""What one data-loading worker delivers at the paper preset's clip shape, by how the training videos are stored.

    python bench/data_pipeline.py [--videos 6] [--frames 60] [--clips 24] [--out results/bench/data-pipeline-cpu.json]

The same videos four ways: 1280 x 720 JPEG frame folders (YouTube-VOS's full size; the baseline), the frame store
that `corrmine-prep` makes of them (short side 256), `.mp4` files at 30 fps read at `train.fps` with seeking, and the
same `.mp4` files decoded from frame 0 for every clip (no seeking: the reader before it seeked). The frames are the
embedded benchmark's training frames enlarged to 720p, so their decoding cost, not their content, is real-sized.
Each way reads the same `--clips` clips (the paper preset's: 6 frames, 256-pixel crops) in one process with one
torch thread, as one DataLoader worker does; clips per second per worker are printed with their ratio to the baseline, and the workers one GPU
needs: a training step's GPU work at the paper's shape took 117 ms per 24 clips on one H200 (205 clips/s,
results/bench/gpu/README.md).
"""
import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import corrmine.datasets as ds
from corrmine.datasets import ClipDataset, prepare_frames
from corrmine.formats import read_rgb
from corrmine.train import preset

GPU_CLIPS_PER_S = 205.0  # one H200's training-step work at the paper's clip shape (results/bench/gpu/README.md)


def make_videos(src: Path, root: Path, n: int, frames: int, seconds: float) -> tuple[Path, Path]:
    "n 720p JPEG frame folders, and .mp4 files of `seconds` at 30 fps (H.264, a key frame a second) cycling the same frames."
    import av
    jpg, mp4 = root / "jpeg720", root / "mp4"
    jpg.mkdir(parents=True); mp4.mkdir()
    for v in sorted(p for p in src.iterdir() if p.is_dir())[:n]:
        files = sorted(v.iterdir())[:frames]
        imgs = [np.asarray(Image.fromarray(read_rgb(f)).resize((1280, 720), Image.Resampling.BICUBIC)) for f in files]
        (jpg / v.name).mkdir()
        for t, im in enumerate(imgs): Image.fromarray(im).save(jpg / v.name / f"{t:05d}.jpg", quality=90)
        with av.open(str(mp4 / f"{v.name}.mp4"), "w") as c:
            s = c.add_stream("libx264", rate=30, options={"g": "30", "keyint_min": "30", "sc_threshold": "0"})   # a key frame a second
            s.width, s.height, s.pix_fmt = 1280, 720, "yuv420p"
            period = 2 * len(imgs) - 2                                                # the frames forth, then back
            for k in range(round(seconds * 30)):
                j = k % period
                im = imgs[j if j < len(imgs) else period - j]
                for pkt in s.encode(av.VideoFrame.from_ndarray(im, format="rgb24")): c.mux(pkt)
            for pkt in s.encode(): c.mux(pkt)
    return jpg, mp4


def clips_per_s(data: ClipDataset, clips: int) -> tuple[float, int]:
    "Clips per second of one process reading `clips` clips, and the frames it decoded."
    data[0]                                                                           # warm: imports, caches
    before, t0 = ds.DECODED[0], time.perf_counter()
    for k in range(1, clips + 1): data[k]
    return clips / (time.perf_counter() - t0), ds.DECODED[0] - before


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--src", default="data/bench/YTVOS/train/JPEGImages", help="training frames to enlarge")
    p.add_argument("--videos", type=int, default=6)
    p.add_argument("--frames", type=int, default=60, help="720p JPEG frames per video")
    p.add_argument("--seconds", type=float, default=10.0, help="length of each .mp4 at 30 fps (Kinetics clips are 10 s)")
    p.add_argument("--clips", type=int, default=24)
    p.add_argument("--device", default="cpu", help="ignored: data loading runs on the CPU whatever trains (bench/suite.py passes it)")
    p.add_argument("--threads", type=int, default=1, help="torch threads of the reading process (a DataLoader worker has 1)")
    p.add_argument("--out", help="write the numbers as JSON here")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    t = preset("paper").train                                                         # 6 frames, 256-pixel crops, 8 fps
    rows = {}
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        jpg, mp4 = make_videos(Path(a.src), d, a.videos, a.frames, a.seconds)
        t0 = time.perf_counter()
        store = prepare_frames(jpg, d / "s256", short_side=256, workers=1, progress=False)
        prep_s = time.perf_counter() - t0
        cache = d / "cache"
        rows["720p JPEG frames (the baseline)"] = clips_per_s(ClipDataset(jpg, t, cache=cache), a.clips)
        rows["frame store, short side 256 (corrmine-prep)"] = clips_per_s(ClipDataset(store, t, cache=cache), a.clips)
        rows[".mp4 at 30 fps, read at 8 fps, seeking"] = clips_per_s(ClipDataset(mp4, t, cache=cache), a.clips)
        real_read = ds._read_mp4
        def from_start(path, idx):                      # the reader before it seeked: frame 0 wanted, so no seek
            return real_read(path, [0, *idx])[1:]
        ds._read_mp4 = from_start
        try: rows[".mp4 at 30 fps, read at 8 fps, decoded from frame 0"] = clips_per_s(ClipDataset(mp4, t, cache=cache), a.clips)
        finally: ds._read_mp4 = real_read
        size = {k: sum(f.stat().st_size for f in Path(root).rglob("*") if f.is_file()) for k, root in
                (("jpeg720", jpg), ("store", store), ("mp4", mp4))}
    base = rows["720p JPEG frames (the baseline)"][0]
    lines = [f"one worker ({a.threads} torch thread{'s' if a.threads > 1 else ''}), {a.clips} clips of {t.n_refs + 1} frames cropped "
             f"to {t.crop}; {a.videos} videos of {a.frames} frames at 1280x720; {os.cpu_count()} CPUs"]
    for name, (cps, dec) in rows.items():
        lines.append(f"{name}: {cps:.2f} clips/s per worker, {cps / base:.1f}x the baseline, {GPU_CLIPS_PER_S / cps:.0f} workers "
                     f"for one GPU's {GPU_CLIPS_PER_S:.0f} clips/s" + (f"; {dec / a.clips:.1f} frames decoded per clip" if dec else ""))
    lines.append(f"the store took {prep_s:.1f} s for {a.videos * a.frames} frames with one process; on disk: 720p JPEG "
                 f"{size['jpeg720'] / 1e6:.1f} MB, store {size['store'] / 1e6:.1f} MB, mp4 {size['mp4'] / 1e6:.1f} MB")
    print("\n".join(lines))
    if a.out:
        Path(a.out).write_text(json.dumps(dict(lines=lines, clips_per_s={k: v[0] for k, v in rows.items()},
                                               decoded_per_clip={k: v[1] / a.clips for k, v in rows.items()},
                                               prep_seconds=prep_s, bytes=size, gpu_clips_per_s=GPU_CLIPS_PER_S), indent=1) + "\n")


if __name__ == "__main__":
    main()
