"""Does torch.compile pay? The encoder's forward and backward, and the Sinkhorn of the mining, eager against compiled.

    python bench/compile.py                              # device 'auto'; on the CPU: 1 clip of 5 frames at 256 px
    python bench/compile.py --device cuda --batch 24 --out results/bench/compile-cuda.json

Each part is timed eagerly and after `torch.compile` (inductor, default mode) in the same run, on the same inputs:
the median of `--repeat` runs after the warm-up, the warm-up itself being the compilation, which is reported apart.
The outputs of the two are compared (the encoder's features, the gradient of one layer, the transport plan).
- encoder: ResNet-18 to res4 at the paper's clip shape (T = 5 frames at 256 px), forward + backward of the mean
  feature (bf16 autocast and channels_last on CUDA, as in training);
- sinkhorn: the log-domain solver the preset mines with, 8 problems of N = 1024 at a fixed 30 iterations (no early
  stop: compiling a data-dependent stop breaks the graph at every check).
"""
import argparse
import time

import torch

from corrmine.core import ModelConfig, get_device, run_info, write_json
from corrmine.encoder import CorrNet
from corrmine.sinkhorn import sinkhorn

from timing import timed


def first_call(fn, device, *args) -> float:
    "Seconds of fn's first call: for a compiled function, the compilation."
    t0 = time.perf_counter()
    fn(*args)
    if device.type == "cuda": torch.cuda.synchronize()
    return time.perf_counter() - t0


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--batch", type=int, default=1, help="clips of 5 frames")
    p.add_argument("--crop", type=int, default=256)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--out", help="write the numbers as JSON here")
    a = p.parse_args()
    dev = get_device(a.device)
    cuda = dev.type == "cuda"
    res = {}

    torch.manual_seed(0)
    net = CorrNet(ModelConfig()).to(dev).train()
    x = torch.randn(a.batch * 5, 3, a.crop, a.crop, device=dev)
    if cuda: net, x = net.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else torch.autocast("cpu", enabled=False)
    layer = next(net.parameters())                                  # the first convolution's weight

    def step(model):
        model.zero_grad(set_to_none=True)
        with amp: f = model(x)
        f.float().mean().backward()
        return f.detach().float(), layer.grad.detach().clone()
    t_eager, (f_e, g_e) = timed(lambda: step(net), dev, a.repeat)
    cnet = torch.compile(net)
    t_comp = first_call(step, dev, cnet)                             # compiles the forward, then the backward
    t_c, (f_c, g_c) = timed(lambda: step(cnet), dev, a.repeat)
    res["encoder"] = dict(eager_s=t_eager, compiled_s=t_c, compile_s=t_comp, speedup=t_eager / t_c,
                          max_feature_diff=float((f_e - f_c).abs().max()),
                          max_grad_rel_diff=float((g_e - g_c).abs().max() / g_e.abs().max()))

    g = torch.Generator(device="cpu").manual_seed(0)
    cost = 1 - torch.nn.functional.normalize(torch.randn(8, 1024, 64, generator=g), dim=-1) @ \
        torch.nn.functional.normalize(torch.randn(8, 64, 1024, generator=g), dim=-2)
    cost = cost.to(dev)
    solve = lambda c: sinkhorn(c, 0.05, iters=30, tol=0).plan
    t_eager, plan_e = timed(lambda: solve(cost), dev, a.repeat)
    csolve = torch.compile(solve)
    t_comp = first_call(csolve, dev, cost)
    t_c, plan_c = timed(lambda: csolve(cost), dev, a.repeat)
    res["sinkhorn"] = dict(eager_s=t_eager, compiled_s=t_c, compile_s=t_comp, speedup=t_eager / t_c,
                           max_scaled_plan_diff=float((plan_e - plan_c).abs().max() * 1024))

    info = run_info(dev)
    print(f"{info['gpu'] or info['cpu']} ({info['cpus']} CPUs), torch {info['torch']}, device {dev}")
    e, s = res["encoder"], res["sinkhorn"]
    print(f"encoder forward + backward, {a.batch * 5} frames at {a.crop} px: eager {e['eager_s'] * 1e3:.0f} ms, compiled "
          f"{e['compiled_s'] * 1e3:.0f} ms ({e['speedup']:.2f}x; compiling took {e['compile_s']:.0f} s); max |feature diff| "
          f"{e['max_feature_diff']:.1e}, gradient rel. diff {e['max_grad_rel_diff']:.1e}")
    print(f"log-domain Sinkhorn, 8 x 1024 x 1024, 30 iterations: eager {s['eager_s'] * 1e3:.0f} ms, compiled "
          f"{s['compiled_s'] * 1e3:.0f} ms ({s['speedup']:.2f}x; compiling took {s['compile_s']:.0f} s); max N |plan diff| "
          f"{s['max_scaled_plan_diff']:.1e}")
    if a.out: write_json(a.out, dict(res, batch=a.batch, crop=a.crop, run=info))


if __name__ == "__main__":
    main()
