"""The paper's central claim on a controlled toy: confidence-based mining finds better positives.

On toy feature pairs with a known correspondence (motion as a permutation of cells plus noise, an
occluder with no true match, a repeated pattern far away; see `nbs/02_toy.ipynb`), the precision of
the mined positives against the true correspondence must never fall, and must rise overall, as FB,
then OT, then TC are switched on. Run with `-s` to see the tables.

By construction every true match of the toy lies inside the window of TC, so the TC step can only
remove wrong matches; the FB and OT steps carry the non-trivial part of the claim.
"""
import pytest

from corrmine.selection import mining_ladder
from corrmine.toy import toy_pair

LADDER = ("none", "fb", "fb+ot", "fb+ot+tc")
SETTINGS = [dict(noise=0.5, smooth=1.0), dict(noise=1.0, smooth=1.0), dict(noise=1.0, smooth=1.5),
            dict(noise=1.5, smooth=1.0)]


def format_table(rows: list[dict]) -> str:
    "A plain-text table of a list of dicts with the same keys; floats with 3 decimals."
    keys = list(rows[0])
    cells = [[f"{r[k]:.3f}" if isinstance(r[k], float) else str(r[k]) for k in keys] for r in rows]
    wd = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
    line = lambda xs: "  ".join(f"{x:>{wd[i]}}" for i, x in enumerate(xs))
    return "\n".join([line(keys), line(["-" * n for n in wd])] + [line(c) for c in cells])


def _check(rows, where):
    prec = [r["precision"] for r in rows]
    for a, b, lo, hi in zip(prec, prec[1:], LADDER, LADDER[1:]):
        assert b >= a, f"{where}: precision fell from {a:.3f} ({lo}) to {b:.3f} ({hi})"
    assert prec[-1] > prec[0], f"{where}: mining did not raise precision ({prec[0]:.3f} -> {prec[-1]:.3f})"
    assert rows[-1]["positives"] > 0, f"{where}: no positive left"


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: f"noise{s['noise']}-smooth{s['smooth']}")
def test_precision_rises_along_the_mining_ladder(setting):
    pairs = [toy_pair(seed=s, **setting) for s in range(5)]
    rows = mining_ladder(pairs, LADDER)
    print(f"\ntoy {setting}, 5 seeds pooled:\n{format_table(rows)}")
    _check(rows, f"pooled {setting}")
    for s, p in enumerate(pairs):
        _check(mining_ladder([p], LADDER), f"seed {s} {setting}")


def test_argmax_baseline_is_imperfect():
    "The toy is not trivial: plain argmax positives are often wrong, so there is something to mine."
    rows = mining_ladder([toy_pair(seed=s) for s in range(5)], ("none",))
    assert rows[0]["precision"] < 0.85
