"""What a diagnostics evaluation costs against one MU step, and what the cadence adds.

    python benchmarks/eval_cost.py [--dtypes float32,float64] [--reps 40]

On ``mu_speed.py``'s data (2000×1000, rank 20, the loop's scaled problem with its caches, at
the factors after 100 iterations) it times ``optimality.evaluate`` and one
``MultiplicativeUpdate().step`` interleaved, ``--reps`` calls each, and prints their median
ratio and the share of a 200-iteration solve that cadences 25, 50 and 100 add beyond the two
evaluations of an end-only solve (initial and final): (200/every − 1)·e / (200·s + 2·e).
A ratio of two medians from one process: steadier under load than whole-call timings, but
it counts evaluations only.  The second table times the chunked loop itself: ``jnmf.solve``
with MU, 200 iterations, at cadences 200 (end-only), 100, 50 and 25, interleaved in a
rotated order over ``--loop-reps`` repetitions, each cadence's median ÷ the end-only median.
"""

from __future__ import annotations

import argparse
import statistics
import time

import equinox as eqx
import harness
import jax
import jax.numpy as jnp
from mu_speed import make_data


def measure(dtype: str, beta: float, reps: int) -> tuple[float, float]:
    import jnmf
    from jnmf.optimality import evaluate
    from jnmf.problem import Factors, make_problem
    from jnmf.solve import data_scale, scale_problem

    V, W0, H0 = make_data(2000, 1000, 20, dtype)
    problem = make_problem(V, beta)
    s = data_scale(problem)
    scaled = scale_problem(problem, s).with_caches()
    sol = jnmf.nmf(V, 20, beta=beta, init=(W0, H0), max_iter=100, tol=0.0)
    F = Factors(sol.W / jnp.sqrt(s), sol.H / jnp.sqrt(s))
    mu = jnmf.MultiplicativeUpdate()
    ev = eqx.filter_jit(evaluate)
    step = eqx.filter_jit(lambda p, F: mu.step(p, F, mu.init(p, F))[0])
    te, ts = [], []
    for i in range(reps + 1):
        a = time.perf_counter()
        jax.block_until_ready(ev(scaled, F))
        b = time.perf_counter()
        jax.block_until_ready(step(scaled, F))
        c = time.perf_counter()
        if i:  # the first pair compiles
            te.append(b - a)
            ts.append(c - b)
    return statistics.median(te), statistics.median(ts)


def loop_ratios(dtype: str, beta: float, reps: int) -> tuple[dict[int, float], float]:
    import jnmf
    from jnmf.problem import Factors, make_problem
    from jnmf.solve import Budget, solve

    V, W0, H0 = make_data(2000, 1000, 20, dtype)
    problem = make_problem(V, beta)
    start = Factors(jnp.asarray(W0), jnp.asarray(H0))
    mu = jnmf.MultiplicativeUpdate()
    run = eqx.filter_jit(lambda p, F, b: solve(p, mu, F, b).factors)
    budgets = {e: Budget(max_iter=200, tol=0.0, every=e) for e in (200, 100, 50, 25)}
    times: dict[int, list[float]] = {e: [] for e in budgets}
    for b in budgets.values():
        jax.block_until_ready(run(problem, start, b))
    order = list(budgets)
    for r in range(reps):
        for e in order[r % 4 :] + order[: r % 4]:
            a = time.perf_counter()
            jax.block_until_ready(run(problem, start, budgets[e]))
            times[e].append(time.perf_counter() - a)
    base = statistics.median(times[200])
    return {e: statistics.median(t) / base for e, t in times.items()}, base / 200


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtypes", type=harness.csv_list(str), default=["float32", "float64"])
    parser.add_argument("--reps", type=int, default=40)
    parser.add_argument("--loop-reps", type=int, default=9)
    args = parser.parse_args()
    harness.print_environment("eval_cost: an evaluation against an MU step")
    rows = []
    for dtype in args.dtypes:
        jax.config.update("jax_enable_x64", dtype == "float64")
        for beta in (2.0, 1.0):
            e, s = measure(dtype, beta, args.reps)
            shares = [(200 / every - 1) * e / (200 * s + 2 * e) for every in (25, 50, 100)]
            rows.append(
                [dtype, f"{beta:g}", f"{1e3 * e:.2f}", f"{1e3 * s:.2f}", f"{e / s:.2f}"]
                + [f"{100 * x:.1f} %" for x in shares]
            )
    header = [
        "dtype",
        "β",
        "evaluate ms",
        "MU step ms",
        "ratio",
        "+ every=25",
        "+ every=50",
        "+ every=100",
    ]
    harness.markdown_table(header, rows)
    rows = []
    for dtype in args.dtypes:
        jax.config.update("jax_enable_x64", dtype == "float64")
        for beta in (2.0, 1.0):
            ratios, per_it = loop_ratios(dtype, beta, args.loop_reps)
            rows.append(
                [dtype, f"{beta:g}", f"{1e3 * per_it:.2f}"]
                + [f"{ratios[e]:.3f}" for e in (100, 50, 25)]
            )
    print("\nsolve (MU, 200 iterations) at a cadence ÷ end-only")
    harness.markdown_table(
        ["dtype", "β", "end-only ms/it", "every=100", "every=50", "every=25"], rows
    )
    print(f"after: {harness.describe_load(harness.MONITOR.sample())}")


if __name__ == "__main__":
    main()
