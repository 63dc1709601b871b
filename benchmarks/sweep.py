"""Rank-sweep throughput on ALL/AML (5000×38): ``jnmf.rank_sweep`` vs a Python loop of
``jnmf.nmf`` calls vs scikit-learn, KL multiplicative updates (protocol:
../shared/BENCHMARKS.md).

Every fit runs exactly ``--iters`` iterations (tol = 0), ranks k = 2…5:

* ``rank_sweep``: ``jnmf.rank_sweep(V, ranks, n_restarts=R, beta=1, max_iter, tol=0,
  every=10)``, its default plan (and each ``--plans`` value beside it);
* ``loop of jnmf.nmf``: ``jnmf.nmf(V, k, beta=1, init=(W0, H0), max_iter, tol=0,
  every=10)`` over every (rank, restart), the starts |N(0,1)|·√(mean V / k) with seed =
  restart index;
* scikit-learn ``non_negative_factorization(init="custom", solver="mu",
  beta_loss="kullback-leibler", tol=0)`` from the same starts on the first ``--sk-restarts``
  restarts of each rank, with 1 and 2 BLAS threads (compared per fit, against the faster).

All contenders are interleaved in each repetition (harness.run_block); times are per fit;
compilation is excluded (a warm-up call, reported apart). ``rank_sweep`` draws its own
starts from its key, so objectives are compared only as the best per rank.

    python benchmarks/sweep.py                       # the full run (README gives its time)
    python benchmarks/sweep.py --dtypes float32 --restarts 4
    python benchmarks/sweep.py --quick               # smoke test
"""

from __future__ import annotations

import argparse
import warnings

import harness
import jax
import numpy as np
from harness import Contender, markdown_table, run_block

jax.config.update("jax_enable_x64", True)

import jnmf  # noqa: E402

RANKS = (2, 3, 4, 5)
EVERY = 10
SKLEARN = ("scikit-learn mu, 1 thread", "scikit-learn mu, 2 threads")


def load_V() -> np.ndarray:
    """ALL/AML expression matrix (5000×38), see ../shared/DATA.md."""
    from jnmf.data import load_all_aml

    return np.asarray(load_all_aml().V, dtype=np.float64)


def kl_divergence(V, W, H) -> float:
    WH = np.asarray(W, np.float64) @ np.asarray(H, np.float64)
    V = np.asarray(V, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(V > 0, V * np.log(V / WH), 0.0)
    return float(np.sum(t - V + WH))


def sweep_call(V, restarts, iters, plan=None):
    options = {} if plan is None else {"plan": plan}

    def run():
        sweep = jnmf.rank_sweep(
            V, RANKS, n_restarts=restarts, beta=1.0, max_iter=iters, tol=0.0, every=EVERY,
            key=0, **options,
        )  # fmt: skip
        return sweep.objective

    return run


def loop_call(V, starts, iters):
    def run():
        solutions = [
            jnmf.nmf(V, W0.shape[1], beta=1.0, init=(W0, H0), max_iter=iters, tol=0.0, every=EVERY)
            for W0, H0 in starts
        ]
        return [(s.W, s.H) for s in solutions]

    return run


def sklearn_call(V, starts, iters):
    from sklearn.decomposition import non_negative_factorization

    def run():
        out = []
        for W0, H0 in starts:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                W, H, n_iter = non_negative_factorization(
                    V, W=W0.copy(), H=H0.copy(), n_components=W0.shape[1], init="custom",
                    solver="mu", beta_loss="kullback-leibler", tol=0, max_iter=iters,
                )  # fmt: skip
            if n_iter != iters:
                raise RuntimeError(f"scikit-learn stopped after {n_iter} of {iters} iterations")
            out.append((W, H))
        return out

    return run


def best_per_rank(values, restarts) -> list[float]:
    return [float(np.min(v)) for v in np.asarray(values, np.float64).reshape(len(RANKS), restarts)]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--restarts", type=int, default=8, help="restarts per rank")
    parser.add_argument("--sk-restarts", type=int, default=1, help="scikit-learn's, per rank")
    parser.add_argument("--iters", type=int, default=500)
    parser.add_argument("--dtypes", type=harness.csv_list(str), default=["float32", "float64"])
    parser.add_argument(
        "--plans", type=harness.csv_list(str), default=[], help="rank_sweep plans beside default"
    )
    harness.common_arguments(parser)
    args = parser.parse_args()
    if args.quick:
        args.restarts, args.sk_restarts, args.iters, args.reps = 2, 1, 50, 2
    import sklearn.decomposition  # noqa: F401  (loads its BLAS before the log)

    harness.print_environment("sweep: rank-sweep throughput on ALL/AML")
    V64 = load_V()
    R, sk_R = args.restarts, min(args.sk_restarts, args.restarts)
    fits = len(RANKS) * R
    print(f"ALL/AML {V64.shape}, ranks {RANKS}, {R} restarts each = {fits} fits, {args.iters} its")
    blocks = []
    for dtype in args.dtypes:
        V = V64.astype(dtype)
        starts = [harness.same_start(V, k, seed) for k in RANKS for seed in range(R)]
        sk_starts = [harness.same_start(V, k, seed) for k in RANKS for seed in range(sk_R)]
        contenders = [Contender("rank_sweep (default plan)", sweep_call(V, R, args.iters), fits)]
        for plan in args.plans:
            run = sweep_call(V, R, args.iters, plan)
            contenders.append(Contender(f"rank_sweep (plan={plan})", run, fits))
        loop = loop_call(V, starts, args.iters)
        contenders.append(Contender("loop of jnmf.nmf", loop, fits))
        sk = sklearn_call(V, sk_starts, args.iters)
        for threads, name in zip((1, 2), SKLEARN, strict=True):
            contenders.append(Contender(name, sk, len(sk_starts), threads))
        title = f"{dtype}: seconds per fit of {args.iters} KL-MU iterations"
        block = run_block(title, contenders, args.reps, args.load_limit)
        blocks.append(block)
        rows = [
            [
                c.name,
                f"{block.median(c.name):.3f}",
                f"{1e3 * block.median(c.name) / args.iters:.3f}",
                block.fmt_ratio("loop of jnmf.nmf", c.name),
                block.fmt_ratio(SKLEARN, c.name),
                f"{block.compile_s(c.name):.1f}" if "jnmf" in c.name or "rank" in c.name else "",
            ]
            for c in contenders
        ]
        print(f"faster scikit-learn by median: {block.faster(SKLEARN)}")
        markdown_table(
            ["method", "s/fit", "ms/it/fit", "loop ÷ method", "sklearn ÷ method", "compile s"],
            rows,
        )
        sweep_best = best_per_rank(sweep_call(V, R, args.iters)(), R)
        loop_best = best_per_rank([kl_divergence(V, W, H) for W, H in loop()], R)
        sk_best = best_per_rank([kl_divergence(V, W, H) for W, H in sk()], sk_R)
        print("best D_KL per rank (rank_sweep: its .objective from its own starts):")
        markdown_table(
            ["rank", "rank_sweep objective", "loop of jnmf.nmf", f"sklearn ({sk_R} restarts)"],
            [
                [k, f"{a:.6g}", f"{b:.6g}", f"{c:.6g}"]
                for k, a, b, c in zip(RANKS, sweep_best, loop_best, sk_best, strict=True)
            ],
        )
    harness.print_finish(blocks)


if __name__ == "__main__":
    main()
