"""What a new shape costs: compile seconds of ``jnmf.nmf`` per solver and β.

    python benchmarks/compile_cost.py                 # every solver, β = 2, 1, 0 where supported
    python benchmarks/compile_cost.py --solvers mu,hals --shapes 3
    python benchmarks/compile_cost.py --boundary      # + what the small-fit options cost to run

Two measurements, as a user meets them (issue "As dependable as scikit-learn…", part 5):

* **Warm process, new shape.** After one fit of each solver at another shape (so JAX, the
  solver's Python code and XLA are loaded), ``jnmf.nmf(X, 5, beta=β, solver=s)`` with
  defaults on ``--shapes`` new float32 shapes near 100 × 50.  The first call's wall time
  minus a second call on the same data is the cost of the new shape; JAX's own compile
  events (tracing, lowering, XLA) are summed alongside (``experiments.progress.compile_timer``).
  The median over the new shapes is printed.
* **Fresh process.** ``import jnmf`` and the first default fit of a 100 × 50 matrix, in a new
  Python process each repetition (the minimum over ``--reps`` is printed).

* **At the boundary** (``--boundary``): the largest fit that still compiles with the
  small-fit options (``jnmf.program``) is compiled with them and with XLA's defaults, and
  the two programs' runs are timed interleaved: the trade the option makes, where it costs
  most.

No persistent compilation cache is used (``JAX_COMPILATION_CACHE_DIR`` is removed from the
children's environment).  Figures count only when the load average stays below 1 (printed
before and after).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.harness import MONITOR, describe_load, markdown_table  # noqa: E402
from experiments.progress import compile_timer  # noqa: E402

FRESH = """
import time
t0 = time.perf_counter()
import numpy as np
import jnmf
t1 = time.perf_counter()
X = np.random.default_rng(0).random((100, 50)).astype(np.float32)
sol = jnmf.nmf(X, 5)
sol.W.block_until_ready()
t2 = time.perf_counter()
print(f"{t1 - t0:.4f} {t2 - t1:.4f}")
"""


def fresh_process(reps: int) -> tuple[float, float]:
    """(import seconds, first fit seconds): minima over ``reps`` new processes."""
    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    imports, fits = [], []
    for _ in range(reps):
        out = subprocess.run(
            [sys.executable, "-c", FRESH], capture_output=True, text=True, env=env, check=True
        )
        a, b = (float(x) for x in out.stdout.split())
        imports.append(a)
        fits.append(b)
    return min(imports), min(fits)


def supported(solver: str, beta: float) -> bool:
    from jnmf.problem import make_problem
    from jnmf.solvers import get_solver

    V = np.ones((4, 3), np.float32)
    try:
        get_solver(solver).check(make_problem(V, beta))
    except ValueError:
        return False
    return True


def new_shape_cost(solver: str, beta: float, shapes: int, offset: int) -> tuple[float, float]:
    """(median wall seconds of a new shape's first call minus its second, median seconds of
    JAX compile events in that first call)."""
    import jnmf

    rng = np.random.default_rng(offset)
    warm = rng.random((80, 40)).astype(np.float32) + 0.1
    jnmf.nmf(warm, 5, beta=beta, solver=solver).W.block_until_ready()
    walls, compiles = [], []
    for k in range(shapes):
        X = rng.random((100 + offset + k, 50)).astype(np.float32) + 0.1
        with compile_timer() as compile_s:
            t0 = time.perf_counter()
            jnmf.nmf(X, 5, beta=beta, solver=solver).W.block_until_ready()
            first = time.perf_counter() - t0
        t0 = time.perf_counter()
        jnmf.nmf(X, 5, beta=beta, solver=solver).W.block_until_ready()
        again = time.perf_counter() - t0
        walls.append(first - again)
        compiles.append(compile_s[0])
    return statistics.median(walls), statistics.median(compiles)


def boundary_cost(solver: str, beta: float, reps: int) -> tuple[float, float, float, float]:
    """At the largest small fit (n × 80, r = 5, 200 iterations with n·80·5·200 ≤
    ``SMALL_WORK``): (compile s with the small-fit options, compile s with XLA's defaults,
    run s with each), the runs interleaved over ``reps`` and their medians taken."""
    import jnmf
    import jnmf.program

    limit = jnmf.program.SMALL_WORK
    n = boundary_rows(limit)
    X = np.random.default_rng(7).random((n, 80)).astype(np.float32) + 0.1
    kwargs = dict(beta=beta, solver=solver, max_iter=200, tol=0.0)

    def call(small: bool) -> float:
        jnmf.program.SMALL_WORK = limit if small else 0
        try:
            t0 = time.perf_counter()
            jnmf.nmf(X, 5, **kwargs).W.block_until_ready()
            return time.perf_counter() - t0
        finally:
            jnmf.program.SMALL_WORK = limit

    first = {small: call(small) for small in (True, False)}
    runs = {True: [], False: []}
    for _ in range(reps):
        for small in (True, False):
            runs[small].append(call(small))
    run = {small: statistics.median(runs[small]) for small in runs}
    return first[True] - run[True], first[False] - run[False], run[True], run[False]


def boundary_rows(limit: int) -> int:
    return limit // (80 * 5 * 200)


def main() -> None:
    import jnmf

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--solvers", default=",".join(sorted(jnmf.SOLVERS)))
    parser.add_argument("--betas", default="2,1,0")
    parser.add_argument("--shapes", type=int, default=3, help="new shapes per solver and β")
    parser.add_argument("--reps", type=int, default=3, help="fresh processes; runs per option")
    parser.add_argument(
        "--boundary",
        action="store_true",
        help="also time the largest small fit with both option sets (jnmf.program)",
    )
    args = parser.parse_args()
    print(f"# compile cost (jax {__import__('jax').__version__}, {os.cpu_count()} CPUs)")
    print(f"command: {' '.join(sys.argv)}")
    print(f"before: {describe_load(MONITOR.first)}")

    imp, first = fresh_process(args.reps)
    print(f"\nfresh process: import jnmf {imp:.2f} s, first default fit (100×50) {first:.2f} s")

    rows = []
    offset = 0
    for solver in args.solvers.split(","):
        for beta in (float(b) for b in args.betas.split(",")):
            if not supported(solver, beta):
                continue
            offset += args.shapes + 1
            wall, comp = new_shape_cost(solver, beta, args.shapes, offset)
            rows.append((solver, f"{beta:g}", f"{wall:.2f}", f"{comp:.2f}"))
            print(f"  {solver:>20} β={beta:g}: new shape {wall:.2f} s (compile {comp:.2f} s)")
    print()
    markdown_table(("solver", "β", "new shape, s", "JAX compile events, s"), rows)
    if args.boundary:
        import jnmf.program

        n = boundary_rows(jnmf.program.SMALL_WORK)
        print(f"\nAt the largest small fit ({n}×80, r = 5, 200 iterations, tol = 0):")
        rows = []
        for solver in args.solvers.split(","):
            for beta in (float(b) for b in args.betas.split(",")):
                if not supported(solver, beta):
                    continue
                c_small, c_full, r_small, r_full = boundary_cost(solver, beta, args.reps)
                rows.append(
                    (
                        solver,
                        f"{beta:g}",
                        f"{c_small:.2f}",
                        f"{c_full:.2f}",
                        f"{1e3 * r_small:.1f}",
                        f"{1e3 * r_full:.1f}",
                        f"{r_small / r_full:.2f}",
                        f"{c_small + r_small:.2f}",
                        f"{c_full + r_full:.2f}",
                    )
                )
                print(f"  {solver:>20} β={beta:g}: " + " ".join(rows[-1][2:]))
        print()
        markdown_table(
            (
                "solver",
                "β",
                "compile s, small options",
                "compile s, defaults",
                "run ms, small",
                "run ms, defaults",
                "run ratio",
                "first call s, small",
                "first call s, defaults",
            ),
            rows,
        )
    end = MONITOR.sample()
    print(f"\nbefore: {describe_load(MONITOR.first)}\nafter: {describe_load(end)}")
    if max(MONITOR.first["others"], end["others"]) >= 1:
        print("UNRELIABLE: other processes kept the load average at or above 1")


if __name__ == "__main__":
    main()
