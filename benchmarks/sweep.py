"""Rank-sweep throughput on ALL/AML (5000×38): jnmf.rank_sweep vs a Python loop vs scikit-learn.

Every (rank, restart) pair for k = 2…5 runs exactly ``--iters`` KL multiplicative updates
(no early stopping: tol = 0 everywhere) from the same starting factors
(``jnmf.sweep.initial_factors``, i.e. |N(0,1)|·√(mean V / r) per rank and restart):

* ``sweep[loop]``: ``rank_sweep(plan="loop")``, one program per rank, restarts run one after
  the other inside it (``lax.map``, batch_size=1; the CPU default);
* ``sweep[padded]``: ``rank_sweep(plan="padded", batch_size=1)``: one program for every
  pair, ranks padded to 5;
* ``sweep[vmap]`` (``--vmap``): ``plan="padded", batch_size=None``, every pair vmapped at
  once (the accelerator plan; slow on XLA's CPU backend);
* ``loop``: a Python loop over the same solves, one jitted unbatched ``jnmf.solve`` each;
* ``sklearn``: ``non_negative_factorization(init="custom", solver="mu",
  beta_loss="kullback-leibler", tol=0)`` looped over the pairs (it updates W then H, as jnmf).

Compilation is excluded: each jnmf variant first runs with a huge tolerance (traced, so no
recompile), which stops every solve after its first ``every`` = 10 iterations.  Threads: 2
for NumPy/BLAS (threadpoolctl); XLA uses the machine's cores.  Times are wall-clock on a
shared machine: only the ratios, measured in one process, mean anything.

    python benchmarks/sweep.py          # 8 restarts per rank, sklearn on 2, 1 repetition
    python benchmarks/sweep.py --restarts 50 --sk-restarts 50 --reps 3 --vmap   # full (hours)

scikit-learn is timed on the first ``--sk-restarts`` restarts of each rank and its time
scaled to the full count (it is compared per fit); the default keeps the run near 10 minutes.
"""

from __future__ import annotations

import argparse
import time
import warnings

import jax

jax.config.update("jax_enable_x64", True)

import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from jnmf.batch import restart_keys  # noqa: E402
from jnmf.problem import Factors, make_problem  # noqa: E402
from jnmf.solve import solve  # noqa: E402
from jnmf.solvers import MultiplicativeUpdate  # noqa: E402
from jnmf.sweep import initial_factors, rank_sweep  # noqa: E402

RANKS = (2, 3, 4, 5)
EVERY = 10


def load_V() -> np.ndarray:
    """ALL/AML expression matrix (5000×38)."""
    from jnmf.data import load_all_aml

    return np.asarray(load_all_aml().V, dtype=np.float64)


def starts(V, dtype, n_restarts, key):
    """{rank: (W0 (R, n, r), H0 (R, r, m))}: the starts every method uses."""
    problem = make_problem(V.astype(dtype), 1.0)
    keys = restart_keys(key, n_restarts)
    out = {}
    for r in RANKS:
        W0, H0, _ = initial_factors(problem, (r,), keys, "random", r)
        out[r] = (np.asarray(W0), np.asarray(H0))
    return out


def time_it(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    jax.block_until_ready(out)
    return time.perf_counter() - t0, out


def run_sweep(V, dtype, n_restarts, iters, key, plan, batch_size, tol):
    sw = rank_sweep(
        V.astype(dtype),
        RANKS,
        n_restarts=n_restarts,
        beta=1.0,
        max_iter=iters,
        tol=tol,
        key=key,
        every=EVERY,
        plan=plan,
        batch_size=batch_size,
    )
    return sw.objective


def make_single(V, dtype, iters):
    problem = make_problem(V.astype(dtype), 1.0)
    solver = MultiplicativeUpdate()

    @eqx.filter_jit
    def single(W0, H0, tol):
        return solve(problem, solver, Factors(W0, H0), max_iter=iters, tol=tol, every=EVERY)

    def loop(st, tol):
        tol = jnp.asarray(tol, dtype)
        objs = []
        for r in RANKS:
            W0, H0 = st[r]
            for i in range(W0.shape[0]):
                sol = single(jnp.asarray(W0[i]), jnp.asarray(H0[i]), tol)
                objs.append(sol.objective.block_until_ready())
        return jnp.stack(objs)

    return loop


def run_sklearn(V, dtype, st, iters):
    from sklearn.decomposition import non_negative_factorization

    X = V.astype(dtype)
    out = []
    for r in RANKS:
        W0, H0 = st[r]
        for i in range(W0.shape[0]):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                W, H, n_iter = non_negative_factorization(
                    X,
                    W=W0[i].copy(),
                    H=H0[i].copy(),
                    n_components=r,
                    init="custom",
                    solver="mu",
                    beta_loss="kullback-leibler",
                    tol=0,
                    max_iter=iters,
                )
            assert n_iter == iters
            out.append((W, H))
    return out


def kl(V, W, H):
    WH = W.astype(np.float64) @ H.astype(np.float64)
    return float(np.sum(V * np.log(V / WH) - V + WH))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--restarts", type=int, default=8, help="restarts per rank (issue: 50)")
    ap.add_argument("--iters", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=1, help="interleaved repetitions")
    ap.add_argument("--dtypes", default="float32,float64")
    ap.add_argument("--vmap", action="store_true", help="also time the all-pairs vmap")
    ap.add_argument("--no-sklearn", action="store_true")
    ap.add_argument(
        "--sk-restarts",
        type=int,
        default=2,
        help="restarts per rank timed for scikit-learn (its time is compared per fit)",
    )
    args = ap.parse_args()

    from threadpoolctl import threadpool_limits

    threadpool_limits(2)
    V = load_V()
    R, iters, key = args.restarts, args.iters, 0
    print(
        f"ALL/AML {V.shape}, ranks {RANKS}, {R} restarts each = {len(RANKS) * R} fits, "
        f"{iters} KL-MU iterations, backend {jax.default_backend()}, {args.reps} rep(s)"
    )
    variants = {
        "sweep[loop]": ("loop", 1),
        "sweep[padded]": ("padded", 1),
    }
    if args.vmap:
        variants["sweep[vmap]"] = ("padded", None)
    rows = []
    for dname in args.dtypes.split(","):
        dtype = np.dtype(dname)
        st = starts(V, dtype, R, key)
        loop = make_single(V, dtype, iters)
        compile_s = {}
        for name, (plan, bs) in variants.items():
            compile_s[name], _ = time_it(run_sweep, V, dtype, R, iters, key, plan, bs, 1e30)
        compile_s["loop"], _ = time_it(loop, st, 1e30)
        times = {name: [] for name in list(variants) + ["loop"]}
        if not args.no_sklearn:
            times["sklearn"] = []
        results = {}
        for _ in range(args.reps):
            for name, (plan, bs) in variants.items():
                t, results[name] = time_it(run_sweep, V, dtype, R, iters, key, plan, bs, 0.0)
                times[name].append(t)
            t, results["loop"] = time_it(loop, st, 0.0)
            times["loop"].append(t)
            if not args.no_sklearn:
                sk_st = {
                    r: (W[: args.sk_restarts], H[: args.sk_restarts]) for r, (W, H) in st.items()
                }
                t, sk = time_it(run_sklearn, V, dtype, sk_st, iters)
                times["sklearn"].append(t * R / min(args.sk_restarts, R))
        med = {k: float(np.median(v)) for k, v in times.items()}
        ours = np.asarray(results["sweep[loop]"], dtype=np.float64).ravel()
        agree = np.max(np.abs(np.asarray(results["loop"]).ravel() - ours) / ours)
        print(
            f"\n{dname}: compile+10 its (s): "
            + ", ".join(f"{k} {v:.1f}" for k, v in compile_s.items())
        )
        print(f"  max rel. objective difference, sweep vs loop: {agree:.1e}")
        if not args.no_sklearn:
            n_sk = min(args.sk_restarts, R)
            sk_obj = np.array([kl(V, W, H) for W, H in sk])
            ours_sk = ours.reshape(len(RANKS), R)[:, :n_sk].ravel()
            print(
                f"  max rel. objective difference, sweep vs sklearn: "
                f"{np.max(np.abs(sk_obj - ours_sk) / sk_obj):.1e}; sklearn timed on {n_sk} "
                f"restarts per rank, its time scaled to {R}"
            )
        for name, t in med.items():
            line = f"  {name:14s} {t:8.2f} s  {1e3 * t / (len(RANKS) * R * iters):7.3f} ms/it/fit"
            if name != "loop":
                line += f"   loop/{name} = {med['loop'] / t:5.2f}×"
            if name.startswith("sweep") and "sklearn" in med:
                line += f"   sklearn/{name} = {med['sklearn'] / t:5.2f}×"
            print(line)
            rows.append((dname, name, t))
    print("\n| dtype | method | time (s) | loop / method | sklearn / method |")
    print("|---|---|---|---|---|")
    by = {(d, n): t for d, n, t in rows}
    for d, n, t in rows:
        lo = by[(d, "loop")] / t
        sk = f"{by[(d, 'sklearn')] / t:.2f}×" if (d, "sklearn") in by else "–"
        print(f"| {d} | {n} | {t:.1f} | {lo:.2f}× | {sk} |")


if __name__ == "__main__":
    main()
