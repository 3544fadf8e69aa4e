"""What the benchmarks share: timing a call the same way everywhere."""
import statistics
import time

import torch


def timed(fn, device, repeat):
    "Median wall time of `fn()` over `repeat` runs after one warm-up, and its last result."
    out = fn()
    times = []
    for _ in range(repeat):
        if device.type == "cuda": torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = fn()
        if device.type == "cuda": torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out
