"""Sparse KL multiplicative updates: jnmf on a sparse V against scikit-learn on a SciPy CSR.

Per iteration, interleaved (protocol: ../shared/BENCHMARKS.md), on

* a synthetic count matrix: n × m with ``--density`` of the entries stored, at uniformly
  random positions, values 1 + Poisson(2) (so every stored entry is positive);
* the Reuters counts of the ``lda`` package (``jnmf.data.load("reuters")``, 4258 × 395).

Contenders, from the same W₀, H₀ = |N(0,1)|·√(mean V / r) (``harness.same_start``), each
doing ``--block`` iterations per call with every stopping rule off:

* ``jnmf sparse``: ``jnmf.solve(make_problem(V_csr, 1), MultiplicativeUpdate(), (W₀, H₀),
  max_iter=block, tol=0, every=block)`` compiled once (WH only at the stored entries);
* ``jnmf nmf``: what a user types, ``jnmf.nmf(V_csr, r, beta="kullback-leibler",
  init=(W₀, H₀), max_iter=block, tol=0)`` with every other argument at its default (the
  checks, the scale and the default diagnostics cadence included);
* ``sklearn 1t`` / ``sklearn 2t``: ``non_negative_factorization(V_csr, W₀, H₀,
  init="custom", solver="mu", beta_loss="kullback-leibler", tol=0, max_iter=block)`` with 1
  and 2 BLAS threads (threadpoolctl); ratios use the faster of the two in each repetition.

Both update W then H.  Peak memory: each contender runs ``--block`` iterations twice in a
fresh child process (after imports and data); before each call the child's peak resident set
(VmHWM, /proc/self/status) is reset to its current resident set (``clear_refs``), and the
figure is the rise of the peak during the call: jnmf's first call includes compiling, its
second is the run alone.  Beside it: the compiled jnmf program's own buffers
(``memory_analysis``: arguments + outputs + temporaries) and the O(nnz + (n + m) r) floor of
holding V (values + two int32 indices) and the factors in float32.

    python benchmarks/sparse_speed.py                  # 50 000 × 10 000 at 0.2 %, r = 10, 20
    python benchmarks/sparse_speed.py --quick          # smoke test
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402


def synthetic(n: int, m: int, density: float, seed: int = 0):
    """A SciPy CSR n×m count matrix with ``density`` of its entries stored (float32)."""
    from scipy import sparse

    rng = np.random.default_rng(seed)
    nnz = int(round(n * m * density))
    flat = np.unique(rng.integers(0, n * m, nnz, dtype=np.int64))
    values = (1 + rng.poisson(2.0, flat.size)).astype(np.float32)
    return sparse.csr_matrix((values, (flat // m, flat % m)), shape=(n, m))


def reuters():
    """The Reuters counts (words × documents) as a float32 SciPy CSR matrix."""
    from scipy import sparse

    import jnmf

    return sparse.csr_matrix(np.asarray(jnmf.data.load("reuters").V, dtype=np.float32))


def dataset(name: str, args):
    if name == "reuters":
        return reuters()
    return synthetic(args.n, args.m, args.density)


def start(X, rank: int):
    """W₀, H₀ of harness.same_start (mean V over every entry, zeros included)."""
    mean = float(X.sum(dtype=np.float64)) / (X.shape[0] * X.shape[1])
    rng = np.random.default_rng(0)
    scale = np.sqrt(mean / rank)
    W0 = (np.abs(rng.standard_normal((X.shape[0], rank))) * scale).astype(X.dtype)
    H0 = (np.abs(rng.standard_normal((rank, X.shape[1]))) * scale).astype(X.dtype)
    return W0, H0


def jnmf_runner(X, W0, H0, block: int):
    """A call doing ``block`` sparse KL-MU iterations in one compiled program."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    import jnmf
    from jnmf.solvers import MultiplicativeUpdate

    problem = jnmf.make_problem(X, "kullback-leibler")
    solver = MultiplicativeUpdate()
    budget = jnmf.Budget(max_iter=block, tol=0.0, every=block)
    start = jnmf.Factors(jnp.asarray(W0), jnp.asarray(H0))
    arrays, static = eqx.partition((problem, start), eqx.is_array)

    def solve(arrays):
        problem, start = eqx.combine(arrays, static)
        return jnmf.solve(problem, solver, start, budget).W

    program = jax.jit(solve)

    def run():
        return program(arrays)

    def buffers() -> int:
        stats = program.lower(arrays).compile().memory_analysis()
        return stats.argument_size_in_bytes + stats.output_size_in_bytes + stats.temp_size_in_bytes

    return run, buffers


def nmf_runner(X, W0, H0, block: int):
    """``jnmf.nmf`` with defaults (only β, the start and the budget given)."""
    import jnmf

    def run():
        return jnmf.nmf(X, W0.shape[1], beta="kullback-leibler", init=(W0, H0),
                        max_iter=block, tol=0.0).W  # fmt: skip

    return run


def sklearn_runner(X, W0, H0, block: int):
    from sklearn.decomposition import non_negative_factorization

    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            W, _, _ = non_negative_factorization(
                X, W=W0.copy(), H=H0.copy(), n_components=W0.shape[1], init="custom",
                solver="mu", beta_loss="kullback-leibler", tol=0.0, max_iter=block,
            )  # fmt: skip
        return W

    return run


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def _reset_peak() -> int:
    """Reset VmHWM to the current resident set (Linux ``clear_refs`` 5); return that in KiB."""
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    return _status_kib("VmRSS")


def _memory_child(queue, name: str, who: str, rank: int, block: int, args) -> None:
    """In a fresh process: imports, data, start; then ``block`` iterations of ``who`` twice,
    the peak resident set reset before each call (the first jnmf call also compiles)."""
    import jax  # noqa: F401  (imported by both contenders' children alike)
    import sklearn.decomposition  # noqa: F401

    X = dataset(name, args)
    W0, H0 = start(X, rank)
    if who == "jnmf":
        run, _ = jnmf_runner(X, W0, H0, block)
    else:
        from threadpoolctl import threadpool_limits

        sk = sklearn_runner(X, W0, H0, block)

        def run():
            with threadpool_limits(1):
                return sk()

    rises = []
    for _ in range(2):
        base = _reset_peak()
        harness._block(run())
        rises.append(_status_kib("VmHWM") - base)
    queue.put((base, rises))


def peak_memory(name: str, who: str, rank: int, block: int, args) -> tuple[float, float, float]:
    """(resident MiB before the call, peak rise MiB of the first call, of the second call) in
    a fresh child process running ``who``."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=_memory_child, args=(queue, name, who, rank, block, args))
    child.start()
    base, (first, second) = queue.get()
    child.join()
    return base / 1024, first / 1024, second / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--m", type=int, default=10_000)
    parser.add_argument("--density", type=float, default=0.002)
    parser.add_argument("--ranks", type=harness.csv_list(int), default=[10, 20])
    parser.add_argument("--block", type=int, default=10, help="iterations per timed call")
    parser.add_argument("--datasets", type=harness.csv_list(str), default=["synthetic", "reuters"])
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory children")
    harness.common_arguments(parser)
    args = parser.parse_args()
    if args.quick:
        args.n, args.m, args.reps, args.block, args.ranks = 5000, 2000, 2, 5, [10]
    import jax

    jax.config.update("jax_enable_x64", False)
    harness.print_environment("sparse KL-MU: jnmf sparse vs scikit-learn mu on CSR (float32)")
    blocks, rows = [], []
    for name in args.datasets:
        X = dataset(name, args)
        density = X.nnz / (X.shape[0] * X.shape[1])
        print(f"\n{name}: {X.shape[0]} × {X.shape[1]}, nnz {X.nnz} ({100 * density:.3f} %)")
        for rank in args.ranks:
            W0, H0 = start(X, rank)
            run_jnmf, buffers = jnmf_runner(X, W0, H0, args.block)
            run_sk = sklearn_runner(X, W0, H0, args.block)
            contenders = [
                harness.Contender("jnmf sparse", run_jnmf, args.block),
                harness.Contender("jnmf nmf", nmf_runner(X, W0, H0, args.block), args.block),
                harness.Contender("sklearn 1t", run_sk, args.block, threads=1),
                harness.Contender("sklearn 2t", run_sk, args.block, threads=2),
            ]
            title = f"{name} r={rank}"
            block = harness.run_block(title, contenders, args.reps, args.load_limit)
            blocks.append(block)
            speedup = 1.0 / block.ratio("jnmf sparse", ["sklearn 1t", "sklearn 2t"])
            default = 1.0 / block.ratio("jnmf nmf", ["sklearn 1t", "sklearn 2t"])
            floor = (X.nnz * (4 + 8) + (X.shape[0] + X.shape[1]) * rank * 4) / 2**20
            row = [
                title,
                block.ms("jnmf sparse"),
                block.ms("jnmf nmf"),
                block.ms("sklearn 1t"),
                block.ms("sklearn 2t"),
                block.mark(f"{speedup:.2f}×"),
                block.mark(f"{default:.2f}×"),
                f"{block.compile_s('jnmf sparse'):.1f}",
                f"{buffers() / 2**20:.0f}",
                f"{floor:.0f}",
            ]
            if not args.no_memory:
                for who in ("jnmf", "sklearn"):
                    base, first, second = peak_memory(name, who, rank, args.block, args)
                    row.append(f"{first:.0f} / {second:.0f} (RSS {base:.0f})")
            rows.append(row)
    header = [
        "data, rank",
        "jnmf ms/it",
        "jnmf.nmf defaults ms/it",
        "sklearn 1t ms/it",
        "sklearn 2t ms/it",
        "jnmf speed-up",
        "jnmf.nmf defaults speed-up",
        "jnmf compile s",
        "jnmf buffers MiB",
        "V + factors MiB",
    ]
    if not args.no_memory:
        header += ["jnmf peak rise MiB 1st / 2nd call", "sklearn peak rise MiB 1st / 2nd"]
    print()
    harness.markdown_table(header, rows)
    harness.print_finish(blocks)


if __name__ == "__main__":
    main()
