"""Per-iteration time of jnmf's multiplicative updates against scikit-learn, torchnmf, nimfa
and the XLA product floor: the table of issue 9 (protocol: ../shared/BENCHMARKS.md).

Part ``table`` — for each dtype and β (2 = Frobenius, 1 = KL), one interleaved block of:

(a) ``jnmf.nmf(V, r, init=(W0, H0), tol=0, max_iter=N)`` with every other argument at its
    default (β given only for KL): exactly what a user types;
(b) the same with ``every=10`` (scikit-learn's own cadence for its stopping test);
(c) the same with ``every=N``: diagnostics only at the end;
    the bare MU iteration, twice: ``jnmf.solve(..., every=N)`` under ``eqx.filter_jit`` and
    a plain ``lax.fori_loop`` of ``jnmf.MultiplicativeUpdate().step``;
    the XLA product floor: the products one MU iteration needs, chained in a jit-compiled
    ``fori_loop`` so that none is hoisted —
        Frobenius: V Hᵀ, H Hᵀ, W (H Hᵀ), Wᵀ V, Wᵀ W, (Wᵀ W) H
        KL:        W H, (V / WH) Hᵀ, W H, Wᵀ (V / WH);
    scikit-learn ``mu``, torchnmf and nimfa (where installed), each with 1 and 2 BLAS/torch
    threads; ratios use the faster of the two in each repetition.

Part ``solvers`` — for every solver in ``jnmf.SOLVERS`` whose ``check`` accepts the β:
(a) defaults against (c) end-only, interleaved, N = ``--solver-iters`` iterations (fewer
where one end-only call takes over ``--call-cap`` seconds, as projected gradient on KL).

Every library starts from the same (W0, H0) with its stopping rule off; times are per
iteration (whole call ÷ iterations, so the fixed cost of a call is included); compile time
is the first call minus a warm one, reported apart. The data are 1 %-noisy products of
uniform factors plus 1e-3, far from subnormals (XLA flushes them, NumPy does not).

    python benchmarks/mu_speed.py                       # the full run (see README for time)
    python benchmarks/mu_speed.py --parts table --betas 2 --dtypes float32
    python benchmarks/mu_speed.py --quick               # smoke test, small sizes, 2 reps
"""

from __future__ import annotations

import argparse
import warnings

import harness
import numpy as np
from harness import Contender, markdown_table, run_block

np.mat = np.asmatrix  # nimfa 1.4 under NumPy 2

import equinox as eqx  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

jax.config.update("jax_enable_x64", True)

import jnmf  # noqa: E402

SKLEARN = ("scikit-learn mu, 1 thread", "scikit-learn mu, 2 threads")
TARGETS = {  # issue 9, "Must show": (row, β, dtype) -> largest ratio to the faster sklearn
    ("(a) defaults", 2.0, "float32"): 0.9,
    ("(a) defaults", 1.0, "float32"): 0.55,
}


def make_data(n: int, m: int, rank: int, dtype: str, seed: int = 0):
    """V = |U(0,1)ⁿˣʳ U(0,1)ʳˣᵐ + 1 % noise| + 1e-3 and the shared start (W0, H0)."""
    rng = np.random.default_rng(seed)
    V = rng.uniform(0, 1, (n, rank)) @ rng.uniform(0, 1, (rank, m))
    V = np.abs(V + 0.01 * V.std() * rng.standard_normal(V.shape)) + 1e-3
    V = V.astype(dtype)
    return (V, *harness.same_start(V, rank, seed))


def beta_name(beta: float) -> str:
    return {2.0: "Frobenius", 1.0: "KL"}.get(beta, f"β={beta:g}")


# ----------------------------------------------------------------------------- jnmf
def nmf_call(V, W0, H0, beta, iters, **options):
    """``jnmf.nmf`` as a user calls it: only init, tol, max_iter (and β for KL) given."""
    beta_option = {} if beta == 2.0 else {"beta": beta}

    def run():
        solution = jnmf.nmf(
            V, W0.shape[1], init=(W0, H0), tol=0, max_iter=iters, **beta_option, **options
        )
        return solution.W, solution.H

    return run


def bare_mu_calls(V, W0, H0, beta, iters) -> dict:
    """The MU iteration without the loop's diagnostics: ``solve`` end-only and a plain loop."""
    problem = jnmf.make_problem(jnp.asarray(V), beta)
    start = (jnp.asarray(W0), jnp.asarray(H0))
    mu = jnmf.MultiplicativeUpdate()

    @eqx.filter_jit
    def solve_end_only(problem, W, H):
        solution = jnmf.solve(problem, mu, (W, H), max_iter=iters, tol=0.0, every=iters)
        return solution.W, solution.H

    @eqx.filter_jit
    def step_loop(problem, W, H):
        def body(_, factors):
            W, H = mu.step(problem, factors, mu.init(problem, factors))[0]
            return W, H

        return jax.lax.fori_loop(0, iters, body, (W, H))

    return {
        "solve, end-only (bare MU)": lambda: solve_end_only(problem, *start),
        "fori_loop of MU step": lambda: step_loop(problem, *start),
    }


def xla_floor(V, W0, H0, beta, iters):
    """The products of one MU iteration, chained in a jitted ``fori_loop`` (see docstring).

    Frobenius chains W ← s·V Hᵀ − s·10⁻⁶·W (H Hᵀ), H ← s·Wᵀ V − s·10⁻⁶·(Wᵀ W) H with
    s = 1/‖V‖₂ so the iterates stay bounded; KL chains W ← (V / WH) Hᵀ, H ← Wᵀ (V / WH)
    (homogeneous of degree −1 in each factor, so bounded too).
    """
    Vj, W, H = jnp.asarray(V), jnp.asarray(W0), jnp.asarray(H0)
    s = jnp.asarray(1.0 / np.linalg.norm(V.astype(np.float64), 2), V.dtype)

    def frobenius(_, factors):
        W, H = factors
        W = (Vj @ H.T) * s - (W @ (H @ H.T)) * (s * 1e-6)
        H = (W.T @ Vj) * s - ((W.T @ W) @ H) * (s * 1e-6)
        return W, H

    def kl(_, factors):
        W, H = factors
        W = (Vj / (W @ H)) @ H.T
        H = W.T @ (Vj / (W @ H))
        return W, H

    body = frobenius if beta == 2.0 else kl
    loop = jax.jit(lambda W, H: jax.lax.fori_loop(0, iters, body, (W, H)))
    return lambda: loop(W, H)


# ------------------------------------------------------------------------ the others
def sklearn_call(V, W0, H0, beta, iters):
    from sklearn.decomposition import non_negative_factorization

    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning at max_iter
            return non_negative_factorization(
                V, W=W0.copy(), H=H0.copy(), n_components=W0.shape[1], init="custom",
                solver="mu", beta_loss=beta, tol=0, max_iter=iters,
            )[:2]  # fmt: skip

    return run


def torchnmf_call(torch, V, W0, H0, beta, iters):
    """torchnmf writes V ≈ H Wᵀ with its H (n×r) = our W and its W (m×r) = our Hᵀ."""
    from torchnmf.nmf import NMF

    Vt = torch.from_numpy(V)

    def run():
        model = NMF(W=torch.from_numpy(H0.T.copy()), H=torch.from_numpy(W0.copy()))
        model.fit(Vt, beta=beta, tol=float("-inf"), max_iter=iters)
        return None

    return run


def nimfa_call(nimfa, V, W0, H0, beta, iters):
    """nimfa's ``Nmf`` (updates H first), its convergence test and residual test off."""
    update, objective = ("euclidean", "fro") if beta == 2.0 else ("divergence", "div")
    Vm = np.asmatrix(V)

    def run():
        model = nimfa.Nmf(
            Vm, seed=None, W=np.asmatrix(W0.copy()), H=np.asmatrix(H0.copy()),
            rank=W0.shape[1], max_iter=iters, update=update, objective=objective,
            test_conv=10**9, min_residuals=None,
        )  # fmt: skip
        model.factorize()
        return None

    return run


# ----------------------------------------------------------------------------- parts
def table_block(args, dtype, beta, others):
    V, W0, H0 = make_data(args.n, args.m, args.rank, dtype)
    N = args.iters
    contenders = [
        Contender("(a) defaults", nmf_call(V, W0, H0, beta, N), N),
        Contender("(b) every=10", nmf_call(V, W0, H0, beta, N, every=10), N),
        Contender("(c) end-only", nmf_call(V, W0, H0, beta, N, every=N), N),
    ]
    contenders += [Contender(k, f, N) for k, f in bare_mu_calls(V, W0, H0, beta, N).items()]
    contenders.append(Contender("XLA product floor", xla_floor(V, W0, H0, beta, N), N))
    for threads in (1, 2):
        suffix = f"{threads} thread" + ("s" if threads > 1 else "")
        contenders.append(
            Contender(f"scikit-learn mu, {suffix}", sklearn_call(V, W0, H0, beta, N), N, threads)
        )
        if others.get("torch"):
            run = torchnmf_call(others["torch"], V, W0, H0, beta, N)
            contenders.append(Contender(f"torchnmf, {suffix}", run, N, threads))
        if others.get("nimfa"):
            run = nimfa_call(others["nimfa"], V, W0, H0, beta, N)
            contenders.append(Contender(f"nimfa, {suffix}", run, N, threads))
    title = f"{beta_name(beta)}, {dtype}, {args.n}×{args.m}, rank {args.rank}, {N} iterations"
    block = run_block(title, contenders, args.reps, args.load_limit)
    names = [c.name for c in contenders]
    floor, end_only = "XLA product floor", "(c) end-only"
    rows = []
    for name in names:
        is_jnmf = name.startswith("(") or name in (
            "solve, end-only (bare MU)",
            "fori_loop of MU step",
        )
        rows.append(
            [
                name,
                block.ms(name),
                block.fmt_ratio(name, SKLEARN),
                block.fmt_ratio(name, end_only) if name.startswith("(") else "",
                block.fmt_ratio(name, floor) if is_jnmf else "",
                f"{block.compile_s(name):.2f}" if is_jnmf else "",
            ]
        )
    print(f"ratios: medians over {args.reps} repetitions of paired ratios; 'sklearn' = the faster")
    print(f"of 1 and 2 threads in each repetition (by median: {block.faster(SKLEARN)})")
    markdown_table(["contender", "ms/it", "÷ sklearn", "÷ (c)", "÷ XLA floor", "compile s"], rows)
    return block


def supported_solvers(beta: float, wanted) -> list[str]:
    """Names in ``jnmf.SOLVERS`` whose ``check`` accepts a problem with this β."""
    probe = jnmf.make_problem(jnp.ones((4, 3)), beta)
    names = []
    for name, solver_class in jnmf.SOLVERS.items():
        if wanted and name not in wanted:
            continue
        try:
            solver_class().check(probe)
        except ValueError:
            continue
        names.append(name)
    return names


def iterations_for(V, W0, H0, beta, name, args) -> int:
    """``--solver-iters``, fewer for a solver whose end-only call takes over ``--call-cap``
    seconds (its diagnostics are then a negligible share, and the run stays short)."""
    N = args.solver_iters
    run = nmf_call(V, W0, H0, beta, N, solver=name, every=N)
    harness.time_call(run)  # compile
    seconds = harness.time_call(run)
    return N if seconds <= args.call_cap else max(3, int(N * args.call_cap / seconds))


def solvers_block(args, dtype, beta):
    V, W0, H0 = make_data(args.n, args.m, args.rank, dtype)
    contenders = []
    for name in supported_solvers(beta, args.solvers):
        N = iterations_for(V, W0, H0, beta, name, args)
        contenders.append(Contender(f"{name} (a)", nmf_call(V, W0, H0, beta, N, solver=name), N))
        run = nmf_call(V, W0, H0, beta, N, solver=name, every=N)
        contenders.append(Contender(f"{name} (c)", run, N))
    if not contenders:
        return None
    title = f"solvers at defaults vs end-only: {beta_name(beta)}, {dtype}"
    block = run_block(title, contenders, args.reps, args.load_limit)
    rows = []
    for a, c in zip(contenders[::2], contenders[1::2], strict=True):
        ratio = block.ratio(a.name, c.name)
        verdict = "meets ≤ 1.05" if ratio <= 1.05 else "MISSES ≤ 1.05"
        rows.append(
            [
                a.name[:-4],
                a.units,
                block.ms(a.name),
                block.ms(c.name),
                block.mark(f"{ratio:.3f} ({verdict})"),
                f"{block.compile_s(a.name):.2f} / {block.compile_s(c.name):.2f}",
            ]
        )
    print("(c) shows ~0 compile time where the probe that chose N had already compiled it.")
    markdown_table(
        ["solver", "N", "(a) ms/it", "(c) ms/it", "(a) ÷ (c)", "compile s (a) / (c)"], rows
    )
    return block


def summary(tables: dict) -> None:
    """The issue's table: (a), (b), (c) ÷ the faster scikit-learn, and the targets."""
    if not tables:
        return
    keys = list(tables)
    print("\n## Summary: jnmf MU time per iteration ÷ the faster scikit-learn (1 or 2 threads)")
    header = ["jnmf MU"] + [f"{beta_name(beta)} {dtype}" for dtype, beta in keys]
    rows = []
    for row in ("(a) defaults", "(b) every=10", "(c) end-only", "solve, end-only (bare MU)"):
        rows.append([row] + [tables[k].fmt_ratio(row, SKLEARN) for k in keys])
    rows.append(
        ["(a) ÷ (c)"] + [tables[k].fmt_ratio("(a) defaults", "(c) end-only", 3) for k in keys]
    )
    rows.append(
        ["bare MU ÷ XLA floor"]
        + [tables[k].fmt_ratio("solve, end-only (bare MU)", "XLA product floor") for k in keys]
    )
    markdown_table(header, rows)
    for (row, beta, dtype), target in TARGETS.items():
        if (dtype, beta) in tables:
            block = tables[dtype, beta]
            ratio = block.ratio(row, SKLEARN)
            verdict = "meets" if ratio <= target else "MISSES"
            print(
                block.mark(
                    f"target {row} ≤ {target} × sklearn ({beta_name(beta)} {dtype}): "
                    f"{ratio:.2f}, {verdict}"
                )
            )
    for (dtype, beta), block in tables.items():
        if beta == 2.0:
            ratio = block.ratio("solve, end-only (bare MU)", "XLA product floor")
            verdict = "meets" if ratio <= 1.0 else "MISSES"
            print(block.mark(f"target bare MU ≤ 1.0 × XLA floor ({dtype}): {ratio:.2f}, {verdict}"))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--m", type=int, default=1000)
    parser.add_argument("--rank", type=int, default=20)
    # N well above the default cadence (50): at N ≤ 50, (a) defaults and (c) end-only run the
    # same schedule and their ratio shows nothing but scatter
    parser.add_argument("--iters", type=int, default=200, help="N of part 'table'")
    parser.add_argument("--solver-iters", type=int, default=200, help="N of part 'solvers'")
    parser.add_argument(
        "--call-cap", type=float, default=2.5, help="seconds per call above which N shrinks"
    )
    parser.add_argument("--dtypes", type=harness.csv_list(str), default=["float32", "float64"])
    parser.add_argument("--betas", type=harness.csv_list(float), default=[2.0, 1.0])
    parser.add_argument("--parts", type=harness.csv_list(str), default=["table", "solvers"])
    parser.add_argument("--solvers", type=harness.csv_list(str), default=None)
    parser.add_argument("--no-others", action="store_true", help="leave out torchnmf and nimfa")
    harness.common_arguments(parser)
    args = parser.parse_args()
    if args.quick:
        args.n, args.m, args.rank, args.iters, args.solver_iters, args.reps = (
            300,
            200,
            10,
            20,
            10,
            2,
        )
    unknown = set(args.parts) - {"table", "solvers"}
    if unknown:
        parser.error(f"--parts takes 'table' and/or 'solvers', got {sorted(unknown)}")
    others = {}
    if "table" in args.parts and not args.no_others:
        others = {"torch": harness.optional_import("torch")}
        others["torchnmf"] = others["torch"] and harness.optional_import("torchnmf")
        if not others["torchnmf"]:
            others["torch"] = None
        others["nimfa"] = harness.optional_import("nimfa")
    import sklearn.decomposition  # noqa: F401  (loads its BLAS before the log)

    harness.print_environment("mu_speed: per-iteration time of multiplicative updates")
    blocks, tables = [], {}
    for dtype in args.dtypes:
        for beta in args.betas:
            if "table" in args.parts:
                tables[dtype, beta] = table_block(args, dtype, beta, others)
                blocks.append(tables[dtype, beta])
            if "solvers" in args.parts:
                block = solvers_block(args, dtype, beta)
                if block is not None:
                    blocks.append(block)
    summary(tables)
    harness.print_finish(blocks)


if __name__ == "__main__":
    main()
