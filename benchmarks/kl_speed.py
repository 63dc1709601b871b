"""Time to a target KL error: jnmf "mu", "kl-cd", "kl-dna" against scikit-learn's KL "mu".

Data: V ~ Poisson(W₀ H₀), W₀, H₀ ~ Gamma(1, 1) scaled so that mean(W₀ H₀) = ``--mean``.
Every method starts from the same W, H = |N(0,1)|·√(mean V / r) and updates W then H.
Error e(t) = D_KL(V‖WH) / ΣV in float64 outside the timed part; e_min = the best error of
any method and of a long float64 reference run (``--ref-iters`` kl-dna iterations).

Time to τ = (iterations to τ) × (median time of one iteration). Every method here does fixed
work per iteration, so the two are measured apart (protocol: ../shared/BENCHMARKS.md):

* per iteration: one interleaved block (harness.run_block) of ``--block`` iterations per
  call — each jnmf solver as ``jnmf.solve(..., every=block)`` (diagnostics only at the end)
  and as the user's call ``jnmf.nmf(V, r, beta=1, solver=…, init=(W0, H0), tol=0,
  max_iter=block)`` at default diagnostics; scikit-learn
  ``non_negative_factorization(solver="mu", beta_loss=1, init="custom", tol=0)`` with 1 and
  2 BLAS threads. Ratios use the faster scikit-learn in each repetition;
* iterations to τ: untimed runs continued checkpoint to checkpoint (every method here is
  stateless between iterations, so resuming from the last iterate is the same algorithm).

    python benchmarks/kl_speed.py                         # 2000×1000, rank 20, float32
    python benchmarks/kl_speed.py --dtype float64 --n 1000 --m 500
    python benchmarks/kl_speed.py --quick                 # smoke test
"""

from __future__ import annotations

import argparse
import warnings

import equinox as eqx
import harness
import jax
import jax.numpy as jnp
import numpy as np
from harness import Contender, markdown_table, run_block

jax.config.update("jax_enable_x64", True)

import jnmf  # noqa: E402

JNMF = ("mu", "kl-cd", "kl-dna")
SKLEARN = ("scikit-learn mu, 1 thread", "scikit-learn mu, 2 threads")
TAUS = (1e-2, 1e-3, 1e-4)


def make_data(n: int, m: int, rank: int, mean: float, dtype: str, seed: int = 0):
    rng = np.random.default_rng(seed)
    L = rng.gamma(1.0, 1.0, (n, rank)) @ rng.gamma(1.0, 1.0, (rank, m))
    V = rng.poisson(L * (mean / L.mean())).astype(dtype)
    return (V, *harness.same_start(V, rank, seed))


def kl_error(V64: np.ndarray, W, H) -> float:
    """D_KL(V‖WH) / ΣV in float64, with 0·log 0 = 0."""
    Y = np.asarray(W, np.float64) @ np.asarray(H, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(V64 > 0, V64 * np.log(V64 / Y), 0.0)
    return float((t - V64 + Y).sum() / V64.sum())


def jnmf_advance(name: str):
    """(problem, W, H, k) -> (W, H) after k iterations, diagnostics only at the end."""
    solver = jnmf.SOLVERS[name]()

    @eqx.filter_jit
    def advance(problem, W, H, k):
        solution = jnmf.solve(problem, solver, (W, H), max_iter=k, tol=0.0, every=k)
        return solution.W, solution.H

    return advance


def sklearn_advance(V, W, H, k):
    from sklearn.decomposition import non_negative_factorization

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        W, H, _ = non_negative_factorization(
            V, W=W.copy(), H=H.copy(), n_components=W.shape[1], init="custom",
            solver="mu", beta_loss=1, tol=0.0, max_iter=k,
        )  # fmt: skip
    return W, H


def checkpoints(limit: int) -> list[int]:
    """1, 2, …, 20, then about 8 % apart on multiples of 10."""
    ks, k = [], 1
    while k <= limit:
        ks.append(k)
        k = k + 1 if k < 20 else 10 * int(np.ceil(k * 1.08 / 10))
    return ks


def in_chunks(advance, chunks=(10, 1)):
    """(W, H, k) -> advance k iterations as calls of a few fixed lengths (one compile each)."""

    def run(W, H, k):
        for chunk in chunks:
            while k >= chunk:
                W, H = advance(W, H, chunk)
                k -= chunk
        return W, H

    return run


def trajectory(advance, W, H, limit: int, V64) -> dict[int, float]:
    """Errors at the checkpoints up to ``limit`` iterations, continuing from each."""
    errors, done = {}, 0
    for k in checkpoints(limit):
        W, H = advance(W, H, k - done)
        done = k
        errors[k] = kl_error(V64, W, H)
    return errors


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--m", type=int, default=1000)
    parser.add_argument("--rank", type=int, default=20)
    parser.add_argument("--mean", type=float, default=5.0)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--block", type=int, default=20, help="iterations per timed call")
    parser.add_argument("--mu-iters", type=int, default=2000, help="cap for MU trajectories")
    parser.add_argument("--fast-iters", type=int, default=300, help="cap for kl-cd, kl-dna")
    parser.add_argument("--ref-iters", type=int, default=1000)
    harness.common_arguments(parser)
    args = parser.parse_args()
    if args.quick:
        args.n, args.m, args.rank, args.reps = 300, 200, 10, 2
        args.mu_iters, args.fast_iters, args.ref_iters, args.block = 200, 50, 200, 10
    solvers = [s for s in JNMF if s in jnmf.SOLVERS]
    import sklearn.decomposition  # noqa: F401  (loads its BLAS before the log)

    harness.print_environment("kl_speed: time to a target KL error")
    V, W0, H0 = make_data(args.n, args.m, args.rank, args.mean, args.dtype)
    V64 = V.astype(np.float64)
    print(f"V {args.n}×{args.m} Poisson(mean {args.mean}), rank {args.rank}, {args.dtype}")
    problem = jnmf.make_problem(jnp.asarray(V), 1.0)
    Wj, Hj = jnp.asarray(W0), jnp.asarray(H0)
    advance = {name: jnmf_advance(name) for name in solvers}

    k = args.block
    contenders = []
    for name in solvers:
        contenders.append(
            Contender(f"jnmf {name}", lambda f=advance[name]: f(problem, Wj, Hj, k), k)
        )
        options = dict(beta=1.0, solver=name, init=(W0, H0), tol=0, max_iter=k)
        contenders.append(
            Contender(
                f"jnmf.nmf {name} (defaults)", lambda o=options: jnmf.nmf(V, args.rank, **o).W, k
            )
        )
    for threads, name in zip((1, 2), SKLEARN, strict=True):
        contenders.append(Contender(name, lambda: sklearn_advance(V, W0, H0, k), k, threads))
    title = f"per-iteration time, {k} iterations per call"
    block = run_block(title, contenders, args.reps, args.load_limit)
    print(f"faster scikit-learn by median: {block.faster(SKLEARN)}")
    markdown_table(
        ["contender", "ms/it", "÷ faster sklearn", "compile s"],
        [
            [
                c.name,
                block.ms(c.name),
                block.fmt_ratio(c.name, SKLEARN),
                f"{block.compile_s(c.name):.2f}",
            ]
            for c in contenders
        ],
    )

    traj = {}
    for name in solvers:
        limit = args.mu_iters if name == "mu" else args.fast_iters
        step = in_chunks(lambda W, H, k, f=advance[name]: f(problem, W, H, k))
        traj[f"jnmf {name}"] = trajectory(step, Wj, Hj, limit, V64)
    traj["sklearn mu"] = trajectory(
        lambda W, H, k: sklearn_advance(V, W, H, k), W0, H0, args.mu_iters, V64
    )
    problem64 = jnmf.make_problem(jnp.asarray(V64), 1.0)
    W64, H64 = jnp.asarray(W0, jnp.float64), jnp.asarray(H0, jnp.float64)
    reference = "kl-dna" if "kl-dna" in advance else "mu"
    e_ref = kl_error(V64, *advance[reference](problem64, W64, H64, args.ref_iters))
    e_min = min(e_ref, *(min(t.values()) for t in traj.values()))
    print(
        f"\ne_min = {e_min:.8f} (float64 reference, {reference}, {args.ref_iters} its: {e_ref:.8f})"
    )

    # Time to τ = iterations × time per iteration; "sklearn" is the faster of its two
    # thread counts in each repetition, so the ratio uses the paired per-iteration ratio.
    timed_as = {f"jnmf {s}": f"jnmf {s}" for s in solvers} | {"sklearn mu": SKLEARN}
    sk_seconds = min(block.median(n) for n in SKLEARN)
    first_hit = {
        (name, tau): next((k for k, e in errors.items() if e - e_min <= tau), None)
        for name, errors in traj.items()
        for tau in TAUS
    }
    rows = []
    for name in traj:
        seconds = sk_seconds if name == "sklearn mu" else block.median(name)
        row = [name, f"{1e3 * seconds:.2f}"]
        for tau in TAUS:
            its, its_sk = first_hit[name, tau], first_hit["sklearn mu", tau]
            if its is None:
                row.append("> cap")
                continue
            cell = f"{its} its, {its * seconds:.2f} s"
            if its_sk is not None:
                ratio = its_sk / its / block.ratio(timed_as[name], SKLEARN)
                cell += " [" + block.mark(f"{ratio:.2f}×") + "]"
            row.append(cell)
        rows.append(row)
    markdown_table(
        ["method", "ms/it"] + [f"τ = {tau:g}: its, s [sklearn ÷ this]" for tau in TAUS], rows
    )
    print("[sklearn ÷ this] > 1: this method reaches τ sooner than the faster scikit-learn.")
    harness.print_finish([block])


if __name__ == "__main__":
    main()
