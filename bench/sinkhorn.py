"""Sinkhorn: corrmine's batched log-domain solver against POT, in the same run.

    python bench/sinkhorn.py                      # 8 problems, N = 1024, on the device 'auto' picks
    python bench/sinkhorn.py --device cpu --out results/bench/sinkhorn-cpu.json

The problems are the affinities of 8 toy pairs (32 x 32 grids, so N = 1024, smooth 64-d features), with
cost 1 - A. POT (`ot.sinkhorn`, NumPy, float64) solves them one after the other, which is what code
without a batched solver does; corrmine solves the batch at once, in the log domain. Regimes:
- converged: both run until their stopping rule (POT: stopThr on its marginal error; corrmine: `tol` on
  the L1 row-marginal error); the largest difference of the plans (and of N * plan) is printed;
- 30 iterations, the setting of every training step, against POT's scaling-domain solver and against
  its log-domain one (the same algorithm as corrmine's);
- 30 iterations at eps = 0.01, where the scaling-domain solver underflows.
"""
import argparse
import warnings

import numpy as np
import ot
import torch

from corrmine.affinity import affinity
from corrmine.core import get_device, run_info, write_json
from corrmine.sinkhorn import sinkhorn
from corrmine.toy import toy_pair

from timing import timed


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--side", type=int, default=32, help="grid side; N = side**2")
    p.add_argument("--eps", type=float, default=0.05)
    p.add_argument("--device", default="auto")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--out", help="also write the numbers as JSON here")
    a = p.parse_args()
    dev = get_device(a.device)
    n = a.side ** 2
    cost = torch.stack([1 - affinity(t.f_t, t.f_r[None])[0]
                        for t in (toy_pair(h=a.side, w=a.side, d=64, seed=s) for s in range(a.batch))])
    cost64 = cost.double().numpy()
    unif = np.full(n, 1.0 / n)
    cost_dev = cost.to(dev)
    res = {"device": str(dev), "torch": torch.__version__, "pot": ot.__version__, "batch": a.batch, "N": n, "eps": a.eps}

    def pot(iters, thr, method="sinkhorn", eps=a.eps):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")                  # POT warns when it stops at numItermax
            return np.stack([ot.sinkhorn(unif, unif, c, eps, method=method, numItermax=iters, stopThr=thr) for c in cost64])

    def report(name, pot_method, pot_iters, pot_thr, our_iters, our_tol, eps):
        t_pot, plan_pot = timed(lambda: pot(pot_iters, pot_thr, pot_method, eps), torch.device("cpu"), a.repeat)
        t_our, r = timed(lambda: sinkhorn(cost_dev, eps, our_iters, our_tol), dev, a.repeat)
        ours = r.plan.double().cpu().numpy()
        diff = float(np.abs(ours - plan_pot).max()) if np.isfinite(plan_pot).all() else float("nan")
        res[name] = dict(pot_method=pot_method, eps=eps, pot_s=t_pot, corrmine_s=t_our, speed_ratio=t_pot / t_our,
                         iters=r.iters, max_plan_diff=diff, max_scaled_plan_diff=n * diff,
                         pot_finite=bool(np.isfinite(plan_pot).all()), corrmine_finite=bool(np.isfinite(ours).all()))
        print(f"{name:<34} POT {pot_method:<13} {t_pot * 1e3:8.1f} ms | corrmine ({dev}) {t_our * 1e3:8.1f} ms "
              f"| ratio {t_pot / t_our:5.1f}x | {r.iters:4d} it | max |T - T_pot| {diff:.1e} (x N: {n * diff:.1e})"
              f" | finite: POT {res[name]['pot_finite']}, corrmine {res[name]['corrmine_finite']}")

    print(f"{a.batch} problems, N = {n}; POT loops over them in float64 NumPy, corrmine solves the batch in float32")
    report("converged, eps 0.05", "sinkhorn", 10000, 1e-9, 10000, 1e-6, a.eps)
    report("30 iterations, eps 0.05", "sinkhorn", 30, 0.0, 30, 0.0, a.eps)
    report("30 iterations, eps 0.05, log-domain", "sinkhorn_log", 30, 0.0, 30, 0.0, a.eps)
    report("30 iterations, eps 0.01", "sinkhorn", 30, 0.0, 30, 0.0, 0.01)
    if a.out: write_json(a.out, dict(res, run=run_info(dev)))


if __name__ == "__main__":
    main()
