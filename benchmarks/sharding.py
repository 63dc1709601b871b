"""A fit sharded over 4 virtual CPU devices against the same fit on one device.

    python benchmarks/sharding.py [--n 4000 --m 2000 --rank 20 --iters 50]
        [--betas 2,1] [--layouts columns,2d] [--dtype float64] [--reps 5]

The script asks XLA for 4 host devices (``--xla_force_host_platform_device_count=4``, set
before JAX starts).  For each β (MU, the same start W₀, H₀ for everyone, ``tol=0`` so every
fit runs ``--iters`` iterations, diagnostics at the end only) it compiles ``jnmf.nmf``'s fit
program (``jnmf.batch.lower_fit``) once on one device and once per mesh layout ("columns":
V split by columns over 4 devices; "2d": 2 rows × 2 columns), then times the compiled
programs interleaved (``harness.run_block``) and reports the wall time per iteration (the
program: init, loop and final diagnostics, over ``--iters``; Python-side validation
excluded), the paired ratio to one device, the largest relative difference of the factors,
and every collective in the sharded program (kind, operand shape, count).

On a machine with 2 cores, 4 virtual devices share those 2 cores: the sharded fit cannot be
faster there, and the ratio measures the partitioning's overhead (collectives, smaller
products), not a speed-up.
"""

from __future__ import annotations

import os

_FLAG = "--xla_force_host_platform_device_count"
if _FLAG not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_FLAG}=4".strip()

import argparse  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402

import harness  # noqa: E402
import jax  # noqa: E402
import numpy as np  # noqa: E402

LAYOUTS = {"columns": (1, 1, 4), "2d": (1, 2, 2)}  # (restarts, rows, columns)


def make_data(n: int, m: int, rank: int, dtype: str) -> np.ndarray:
    """V = W H + noise ≥ 0 with uniform factors of rank ``rank`` (seed 0)."""
    rng = np.random.default_rng(0)
    V = rng.uniform(size=(n, rank)) @ rng.uniform(size=(rank, m))
    return (V + 0.1 * rng.uniform(size=V.shape)).astype(dtype)


def programs(V, beta: float, rank: int, iters: int, layouts: list[str]):
    """name → (compiled fit, its dynamic arguments, the layout's collectives or None,
    seconds to lower and compile)."""
    from jnmf.batch import _program
    from jnmf.problem import Factors, make_problem
    from jnmf.shard import collective_sizes, layout_for, make_mesh
    from jnmf.solve import Budget
    from jnmf.solvers import MultiplicativeUpdate

    W0, H0 = harness.same_start(V, rank)
    problem = make_problem(V, beta)
    budget = Budget(max_iter=iters, tol=0.0, every=iters)
    keys = jax.random.split(jax.random.PRNGKey(0), 1)
    start = Factors(jax.numpy.asarray(W0), jax.numpy.asarray(H0))
    out = {}
    for name in ["1 device"] + layouts:
        layout = None
        if name != "1 device":
            restarts, rows, columns = LAYOUTS[name]
            mesh = make_mesh(columns, rows=rows, restarts=restarts)
            layout = layout_for(mesh, V.shape, 1, "auto")
        args = (problem, MultiplicativeUpdate(), keys, start, rank, budget, 1, False, layout)
        program, dynamic, static = _program(*args)
        begin = time.perf_counter()
        compiled = program.lower(dynamic, static).compile()
        seconds = time.perf_counter() - begin
        sizes = None if layout is None else collective_sizes(compiled.as_text())
        out[name] = (compiled, dynamic, sizes, seconds)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4000)
    parser.add_argument("--m", type=int, default=2000)
    parser.add_argument("--rank", type=int, default=20)
    parser.add_argument("--iters", type=int, default=50)
    parser.add_argument("--betas", type=harness.csv_list(float), default=[2.0, 1.0])
    parser.add_argument("--layouts", type=harness.csv_list(str), default=["columns", "2d"])
    parser.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    harness.common_arguments(parser)
    args = parser.parse_args()
    if args.quick:
        args.n, args.m, args.iters, args.reps = 200, 100, 10, 2
    if args.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    unknown = [name for name in args.layouts if name not in LAYOUTS]
    if unknown:
        parser.error(f"unknown layouts {unknown}: choose from {sorted(LAYOUTS)}")
    harness.print_environment("jnmf sharded over 4 virtual CPU devices vs one device")
    print(
        f"V {args.n}×{args.m} {args.dtype}, rank {args.rank}, MU, {args.iters} iterations per "
        f"call (tol=0, diagnostics at the end), {args.reps} interleaved repetitions"
    )
    V = make_data(args.n, args.m, args.rank, args.dtype)
    blocks, rows, collectives = [], [], {}
    for beta in args.betas:
        progs = programs(V, beta, args.rank, args.iters, args.layouts)
        contenders = [
            harness.Contender(name, lambda c=c, d=d: c(d), units=args.iters)
            for name, (c, d, _, _) in progs.items()
        ]
        block = harness.run_block(f"MU β = {beta:g}", contenders, args.reps, args.load_limit)
        blocks.append(block)
        ref = progs["1 device"][0](progs["1 device"][1])
        for name, (compiled, dynamic, sizes, compile_s) in progs.items():
            sol = compiled(dynamic)
            diff = max(
                float(np.max(np.abs(np.asarray(x) - np.asarray(y))) / np.max(np.abs(np.asarray(y))))
                for x, y in ((sol.W, ref.W), (sol.H, ref.H))
            )
            ratio = "1" if name == "1 device" else block.fmt_ratio(name, "1 device")
            rows.append(
                (f"{beta:g}", name, block.ms(name), ratio, f"{diff:.1e}", f"{compile_s:.2f}")
            )
            if sizes is not None:
                collectives[(beta, name)] = sizes
    print()
    header = ["β", "layout", "ms / iteration", "÷ 1 device", "max rel. diff W, H", "compile s"]
    harness.markdown_table(header, rows)
    n, m, r = args.n, args.m, args.rank
    for (beta, name), sizes in collectives.items():
        counts = Counter((kind, tuple(shape)) for kind, shape in sizes)
        largest = max(int(np.prod(shape)) for _, shape in sizes)
        print(
            f"\ncollectives, β = {beta:g}, {name}: {len(sizes)} operands; largest "
            f"{largest} elements (max(n, m)·r = {max(n, m) * r}, n·m = {n * m})"
        )
        for (kind, shape), count in sorted(counts.items(), key=lambda kv: -np.prod(kv[0][1])):
            if shape:
                print(f"  {kind} {list(shape)} ×{count}")
        scalars = sum(c for (_, shape), c in counts.items() if not shape)
        print(f"  and {scalars} scalar operands")
    harness.print_finish(blocks)


if __name__ == "__main__":
    main()
