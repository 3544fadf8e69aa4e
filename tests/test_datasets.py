"""Loaders on tiny fixtures in the exact real layouts, and every bad-input case with its message."""
import shutil

import numpy as np
import pytest
from PIL import Image

import corrmine.datasets as ds
from corrmine.core import TrainConfig
from corrmine.datasets import ClipDataset, DavisDataset, JhmdbDataset, VipDataset
from corrmine.formats import DataError, write_joints_mat, write_palette_png

HW = (24, 32)


def frame(seed, hw=HW):
    return np.random.default_rng(seed).integers(0, 255, (*hw, 3), dtype=np.uint8)


def make_davis(root, seqs={"bear": 3, "car": 4}):
    for name, n in seqs.items():
        for t in range(n):
            p = root / "JPEGImages/480p" / name / f"{t:05d}.jpg"
            p.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(frame(t)).save(p)
            ids = np.zeros(HW, np.uint8); ids[4:10, 5:12] = 1; ids[12:20, 20:30] = 2; ids[0, 0] = 255
            write_palette_png(root / "Annotations/480p" / name / f"{t:05d}.png", ids)
    (root / "ImageSets/2017").mkdir(parents=True)
    (root / "ImageSets/2017/val.txt").write_text("\n".join(seqs) + "\n")
    return root


def make_jhmdb(root, n=5):
    for video, n_frames in [("clip_a", n), ("clip_b", n)]:
        d = root / "Rename_Images/wave" / video
        d.mkdir(parents=True)
        for t in range(n_frames): Image.fromarray(frame(t)).save(d / f"{t + 1:05d}.png")
        write_joints_mat(root / "joint_positions/wave" / video / "joint_positions.mat",
                         np.random.default_rng(0).uniform(0, 20, (n_frames, 15, 2)))
    (root / "splits").mkdir()
    (root / "splits/wave_test_split1.txt").write_text("clip_a.avi 2\nclip_b.avi 1\n")
    return root


def make_vip(root):
    d = root / "Images/videos1"; d.mkdir(parents=True)
    for t in range(6): Image.fromarray(frame(t)).save(d / f"{t:012d}.jpg")
    for t in (0, 5):
        write_palette_png(root / "Annotations/Category_ids/videos1" / f"{t:012d}.png", np.full(HW, 3, np.uint8))
    (root / "lists").mkdir(); (root / "lists/val_videos.txt").write_text("videos1\n")
    return root


def make_frames(root, videos={"v1": 8, "v2": 3}, hw=(40, 48)):
    for v, n in videos.items():
        (root / v).mkdir(parents=True)
        for t in range(n): Image.fromarray(frame(t, hw)).save(root / v / f"{t:05d}.jpg")
    return root


def listing(root):
    return sorted((str(p.relative_to(root)), p.stat().st_mtime_ns) for p in root.rglob("*"))


def test_loaders_read_the_real_layouts(tmp_path):
    davis = DavisDataset(make_davis(tmp_path / "DAVIS"))
    assert [s.name for s in davis] == ["bear", "car"] and len(davis[1]) == 4
    assert davis[0].object_ids() == [1, 2] and davis[0].mask(2)[0, 0] == 255
    jh = JhmdbDataset(make_jhmdb(tmp_path / "JHMDB"))
    assert [v.name for v in jh] == ["wave/clip_a"] and jh[0].joints.shape == (5, 15, 2)   # test videos only
    vip = VipDataset(make_vip(tmp_path / "VIP_Fine"))
    assert sorted(vip[0].masks) == [0, 5] and vip[0].mask(5).max() == 3
    clips = ClipDataset(make_frames(tmp_path / "JPEGImages"), TrainConfig(crop=16, n_refs=2, frame_gaps=(3,)),
                        cache=tmp_path / "cache")
    assert len(clips) == 1                                           # v2 is too short for a clip spanning 7 frames
    c = clips[0]
    assert c["frames"].shape == (3, 3, 16, 16) and c["dts"].tolist() == [3, 6]


def test_dataset_roots_stay_untouched(tmp_path):
    roots = [make_davis(tmp_path / "DAVIS"), make_jhmdb(tmp_path / "JHMDB"), make_vip(tmp_path / "VIP"),
             make_frames(tmp_path / "frames")]
    before = [listing(r) for r in roots]
    DavisDataset(roots[0])[0].mask(0); JhmdbDataset(roots[1]); VipDataset(roots[2])
    ClipDataset(roots[3], TrainConfig(crop=16, n_refs=2, frame_gaps=(1,)), cache=tmp_path / "cache")[0]
    assert [listing(r) for r in roots] == before
    assert list((tmp_path / "cache").rglob("*.json"))                 # derived data went to the cache


def test_mp4_videos_through_pyav(tmp_path):
    av = pytest.importorskip("av")
    root = tmp_path / "videos"; root.mkdir()
    with av.open(str(root / "a.mp4"), "w") as c:
        s = c.add_stream("mpeg4", rate=10); s.width, s.height, s.pix_fmt = 48, 32, "yuv420p"
        for t in range(9):
            img = np.full((32, 48, 3), 20 * t, np.uint8)
            for pkt in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")): c.mux(pkt)
        for pkt in s.encode(): c.mux(pkt)
    clips = ClipDataset(root, TrainConfig(crop=16, n_refs=2, frame_gaps=(2,), colour_jitter=0.0), cache=tmp_path / "cache")
    assert clips.videos[0]["n"] == 9
    x = clips[0]["frames"]
    assert x.shape == (3, 3, 16, 16)
    means = x.mean((1, 2, 3))
    assert means[0] < means[1] < means[2]                              # later frames are brighter: the right frames


def bad(tmp_path, fn, exc=DataError):
    with pytest.raises(exc) as e: fn()
    return str(e.value)


def test_missing_folder_and_split_list(tmp_path):
    assert "missing DAVIS root folder" in bad(tmp_path, lambda: DavisDataset(tmp_path / "nope"))
    root = make_davis(tmp_path / "DAVIS")
    (root / "ImageSets/2017/val.txt").unlink()
    msg = bad(tmp_path, lambda: DavisDataset(root))
    assert "ImageSets/2017/val.txt: missing DAVIS split list 'val'" in msg
    jh = make_jhmdb(tmp_path / "JHMDB"); shutil.rmtree(jh / "splits")
    assert "splits: missing JHMDB split folder" in bad(tmp_path, lambda: JhmdbDataset(jh))
    vip = make_vip(tmp_path / "VIP"); (vip / "lists/val_videos.txt").unlink()
    assert "val_videos.txt: missing VIP video list" in bad(tmp_path, lambda: VipDataset(vip))
    assert "missing training videos folder" in bad(tmp_path, lambda: ClipDataset(tmp_path / "none"))


def test_sequence_without_frames(tmp_path):
    root = make_davis(tmp_path / "DAVIS")
    for p in (root / "JPEGImages/480p/car").iterdir(): p.unlink()
    assert "JPEGImages/480p/car: frames of sequence 'car' folder holds no frames" in bad(tmp_path, lambda: DavisDataset(root))
    shutil.rmtree(root / "JPEGImages/480p/car")
    assert "JPEGImages/480p/car: missing frames of sequence 'car' folder" in bad(tmp_path, lambda: DavisDataset(root))


def test_mask_count_differs_from_frame_count(tmp_path):
    root = make_davis(tmp_path / "DAVIS")
    (root / "Annotations/480p/car/00003.png").unlink()
    assert "Annotations/480p/car: 3 masks for 4 frames" in bad(tmp_path, lambda: DavisDataset(root))


def test_mask_size_differs_from_frame(tmp_path):
    root = make_davis(tmp_path / "DAVIS")
    write_palette_png(root / "Annotations/480p/bear/00001.png", np.zeros((10, 12), np.uint8))
    assert "bear/00001.png: mask is 10x12 but its frame is 24x32" in bad(tmp_path, lambda: DavisDataset(root))


def test_mask_that_is_not_an_index_image(tmp_path):
    root = make_davis(tmp_path / "DAVIS")
    Image.fromarray(frame(0)).save(root / "Annotations/480p/bear/00002.png")
    assert "bear/00002.png: a mask must be a palette (P) or index (L) image, this one is RGB" in bad(tmp_path, lambda: DavisDataset(root))


def test_corrupt_images(tmp_path):
    root = make_davis(tmp_path / "DAVIS")
    (root / "JPEGImages/480p/car/00002.jpg").write_bytes(b"\xff\xd8\xff garbage")
    assert "car/00002.jpg: not a readable image" in bad(tmp_path, lambda: DavisDataset(root))
    root2 = make_davis(tmp_path / "DAVIS2")
    (root2 / "Annotations/480p/bear/00000.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    assert "bear/00000.png: not a readable image" in bad(tmp_path, lambda: DavisDataset(root2))
    # a frame whose header is fine but whose data is cut off fails when it is read, naming the file
    root3 = make_davis(tmp_path / "DAVIS3")
    p = root3 / "JPEGImages/480p/bear/00001.jpg"
    data = p.read_bytes(); p.write_bytes(data[: int(len(data) * 0.7)])
    seq = DavisDataset(root3)[0]
    assert "bear/00001.jpg: not a readable image" in bad(tmp_path, lambda: seq.frame(1))


def test_jhmdb_bad_inputs(tmp_path):
    root = make_jhmdb(tmp_path / "JHMDB")
    (root / "Rename_Images/wave/clip_a/00005.png").unlink()
    assert "joint_positions.mat: joints for 5 frames, but 4 frames in" in bad(tmp_path, lambda: JhmdbDataset(root))
    root = make_jhmdb(tmp_path / "J2")
    (root / "joint_positions/wave/clip_a/joint_positions.mat").unlink()
    assert "clip_a/joint_positions.mat: missing joint positions" in bad(tmp_path, lambda: JhmdbDataset(root))
    root = make_jhmdb(tmp_path / "J3")
    (root / "splits/wave_test_split1.txt").write_text("clip_a.avi\n")
    assert "expected '<video>.avi 1|2' lines, got 'clip_a.avi'" in bad(tmp_path, lambda: JhmdbDataset(root))


def test_vip_annotation_without_frame(tmp_path):
    root = make_vip(tmp_path / "VIP")
    write_palette_png(root / "Annotations/Category_ids/videos1/000000000099.png", np.zeros(HW, np.uint8))
    assert "000000000099.png: annotation of a frame that is not in" in bad(tmp_path, lambda: VipDataset(root))


def test_clip_bad_inputs(tmp_path):
    root = make_frames(tmp_path / "short", {"v": 3})
    msg = bad(tmp_path, lambda: ClipDataset(root, TrainConfig(n_refs=4, frame_gaps=(1,)), cache=tmp_path / "c"))
    assert "no video has the 5 frames that a clip of 4 references at gap 1 needs" in msg
    empty = tmp_path / "empty"; empty.mkdir()
    assert "no video folders or .mp4 files" in bad(tmp_path, lambda: ClipDataset(empty))
    root = make_frames(tmp_path / "corrupt", {"v": 3})
    (root / "v/00001.jpg").write_bytes(b"nope")
    ds = ClipDataset(root, TrainConfig(crop=16, n_refs=2, frame_gaps=(1,)), cache=tmp_path / "c")
    assert "v/00001.jpg: not a readable image" in bad(tmp_path, lambda: ds[0])


def test_clip_frames_of_different_sizes(tmp_path):
    root = make_frames(tmp_path / "mixed", {"v": 4})
    Image.fromarray(frame(9, (20, 20))).save(root / "v/00002.jpg")
    ds = ClipDataset(root, TrainConfig(crop=16, n_refs=3, frame_gaps=(1,)), cache=tmp_path / "c")
    assert "mixed/v: frames [0, 1, 2, 3] of this video differ in size" in bad(tmp_path, lambda: ds[0])


def _video(path, n, fps, gop=10):
    "A video whose frame t shows t in binary, one 8-pixel stripe per bit: it survives compression and says which frame was read."
    av = pytest.importorskip("av")
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=fps); s.width, s.height, s.pix_fmt = 64, 16, "yuv420p"
        s.codec_context.gop_size = gop
        for t in range(n):
            img = np.repeat(np.array([255 * ((t >> b) & 1) for b in range(8)], np.uint8), 8)[None, :, None].repeat(16, 0).repeat(3, 2)
            for pkt in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")): c.mux(pkt)
        for pkt in s.encode(): c.mux(pkt)


def _which(frame):
    "The frame number a frame of `_video` shows."
    return sum(int(frame[:, 8 * b + 2:8 * b + 6].mean() > 128) << b for b in range(8))


def test_mp4_index_from_metadata_seeking_and_a_common_frame_rate(tmp_path):
    "Indexing reads no frame, a clip is read from the key frame before it, and every video is read at train.fps."
    root = tmp_path / "videos"; root.mkdir()
    _video(root / "a30.mp4", 120, 30); _video(root / "b5.mp4", 40, 5)
    before = ds.DECODED[0]
    clips = ClipDataset(root, TrainConfig(crop=16, n_refs=2, frame_gaps=(1, 2), fps=10.0), cache=tmp_path / "c")
    assert ds.DECODED[0] == before                                     # counts and rates from the containers' metadata
    a, b = clips.videos
    assert (a["n"], a["fps"], a["step"], a["m"]) == (120, 30.0, 3.0, 40)
    assert (b["n"], b["fps"], b["step"], b["m"]) == (40, 5.0, 1.0, 40)   # slower than train.fps: its own frames, none doubled
    for k in range(8):
        item = clips[k]
        step = 3 if item["video"] == "a30.mp4" else 1                   # 30 fps read at 10: every third frame
        assert (item["index"].diff() == step * item["dts"][0]).all(), item
    before = ds.DECODED[0]
    frames = ds._read_mp4(root / "a30.mp4", [100, 103, 106])
    assert ds.DECODED[0] - before <= 10                                 # from the key frame at 100, not from frame 0
    assert [_which(f) for f in frames] == [100, 103, 106]
    assert [_which(f) for f in ds._read_mp4(root / "b5.mp4", [3, 17, 39])] == [3, 17, 39]
    assert ClipDataset(root, TrainConfig(fps=0.0), cache=tmp_path / "c").videos[0]["m"] == 120    # fps=0: each at its own rate
