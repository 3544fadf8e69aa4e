"""Sinkhorn: corrmine's batched solvers (log domain and stabilised scaling) against POT's, in the same run.

    python bench/sinkhorn.py                      # 8 problems, N = 1024, on the device 'auto' picks
    python bench/sinkhorn.py --device cpu --out results/bench/sinkhorn-cpu.json

The problems are the affinities of 8 toy pairs (32 x 32 grids, so N = 1024, smooth 64-d features), with
cost 1 - A: the training step's shape. POT (NumPy, float64) solves them one after the other, which is what code
without a batched solver does; corrmine solves the batch at once in float32, by either method. Each regime runs
every POT solver that reaches the same plan: `sinkhorn` (scaling domain, the fastest), `sinkhorn_stabilized`
(scaling with absorption, like corrmine's) and, at 30 iterations, `sinkhorn_log` (the same iterations as
corrmine's log domain; too slow to run to convergence here). Regimes:
- converged: every solver runs until its stopping rule (POT: stopThr on its marginal error; corrmine: `tol` on
  the L1 row-marginal error);
- 30 iterations at eps = 0.05, the paper's setting of every training step;
- 30 iterations at eps = 0.01 and 200 at eps = 0.005 (the synthetic-cpu preset), where the plain scaling
  domain underflows: POT's `sinkhorn` then warns and returns a wrong plan or NaN.
The largest difference of N * plan to corrmine's scaling solver is printed for each. Converged, the plans must
agree; after a fixed number of iterations they differ by design, because POT updates the column scaling first and
corrmine the row scaling, so they stop half a step apart. The ratio is the POT solver's time over corrmine's
scaling solver's time.
"""
import argparse
import warnings

import numpy as np
import torch

from corrmine.affinity import affinity
from corrmine.core import get_device, run_info, write_json
from corrmine.sinkhorn import sinkhorn
from corrmine.toy import toy_pair

from timing import timed

REGIMES = [  # name, eps, iterations, POT stopThr, corrmine tol, POT solvers
    ("converged, eps 0.05", 0.05, 2000, 1e-9, 1e-5, ("sinkhorn", "sinkhorn_stabilized")),
    ("30 iterations, eps 0.05", 0.05, 30, 0.0, 0.0, ("sinkhorn", "sinkhorn_stabilized", "sinkhorn_log")),
    ("30 iterations, eps 0.01", 0.01, 30, 0.0, 0.0, ("sinkhorn", "sinkhorn_stabilized")),
    ("200 iterations, eps 0.005", 0.005, 200, 0.0, 0.0, ("sinkhorn", "sinkhorn_stabilized")),
]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--side", type=int, default=32, help="grid side; N = side**2")
    p.add_argument("--device", default="auto")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--out", help="also write the numbers as JSON here")
    a = p.parse_args()
    try: import ot
    except ImportError: ot = None                             # e.g. on a GPU machine without it: corrmine's methods alone
    dev = get_device(a.device)
    n = a.side ** 2
    cost = torch.stack([1 - affinity(t.f_t, t.f_r[None])[0]
                        for t in (toy_pair(h=a.side, w=a.side, d=64, seed=s) for s in range(a.batch))])
    cost64 = cost.double().numpy()
    unif = np.full(n, 1.0 / n)
    cost_dev = cost.to(dev)
    res = {"device": str(dev), "torch": torch.__version__, "pot": ot.__version__ if ot else None, "batch": a.batch, "N": n, "regimes": {}}

    def pot(method, iters, thr, eps):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")                  # POT warns when it stops at numItermax or underflows
            return np.stack([ot.sinkhorn(unif, unif, c, eps, method=method, numItermax=iters, stopThr=thr) for c in cost64])

    if ot is None: print("POT is not installed: corrmine's methods only")
    print(f"{a.batch} problems, N = {n}; POT loops over them in float64 NumPy, corrmine solves the batch in float32 on {dev}")
    for name, eps, iters, thr, tol, pot_methods in REGIMES:
        row = res["regimes"][name] = {"eps": eps, "iters": iters}
        ours = {}
        for method in ("log", "scaling"):
            t, r = timed(lambda: sinkhorn(cost_dev, eps, iters, tol, method=method), dev, a.repeat)
            ours[method] = r.plan.double().cpu().numpy()
            row[f"corrmine_{method}"] = {"s": t, "iters": r.iters, "finite": bool(np.isfinite(ours[method]).all())}
        ref = ours["scaling"]
        d = float(np.abs(ours["log"] - ref).max()) * n
        print(f"{name}\n  corrmine log       {row['corrmine_log']['s'] * 1e3:9.1f} ms  ({row['corrmine_log']['iters']} it)"
              f"\n  corrmine scaling   {row['corrmine_scaling']['s'] * 1e3:9.1f} ms  ({row['corrmine_scaling']['iters']} it)"
              f"  max N|T - T_log| {d:.1e}")
        for m in pot_methods if ot else ():
            t, plan = timed(lambda: pot(m, iters, thr, eps), torch.device("cpu"), 1 if m == "sinkhorn_log" else a.repeat)
            finite = bool(np.isfinite(plan).all())
            diff = float(np.abs(plan - ref).max()) * n if finite else float("nan")
            row[f"pot_{m}"] = {"s": t, "finite": finite, "max_scaled_plan_diff": diff, "ratio": t / row["corrmine_scaling"]["s"]}
            print(f"  POT {m:<19} {t * 1e3:9.1f} ms  ratio {t / row['corrmine_scaling']['s']:5.1f}x  "
                  f"max N|T - T_pot| {diff:.1e}{'' if finite else '  (NaN: underflow, not the same plan)'}")
    if a.out: write_json(a.out, dict(res, run=run_info(dev)))


if __name__ == "__main__":
    main()
