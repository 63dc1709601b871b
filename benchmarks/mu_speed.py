"""Time per iteration of multiplicative updates: jnmf vs scikit-learn vs torchnmf vs the floor.

One process, libraries interleaved in every repetition, medians and paired ratios
(see ../shared/BENCHMARKS.md).  The "floor" is the time of the matrix products one MU
iteration needs, measured in the same run with NumPy (BLAS) and with XLA (the same products
jit-compiled in a loop, the floor of any JAX implementation on this machine):

    Frobenius: V Hᵀ, H Hᵀ, W (H Hᵀ), Wᵀ V, Wᵀ W, (Wᵀ W) H
    KL:        W H, (V / WH) Hᵀ, W H, Wᵀ (V / WH)          (elementwise work excluded)

jnmf is timed three ways: ``jnmf.nmf`` with the default per-iteration diagnostics
(objective + KKT residual every iteration, ``every=1``), with diagnostics every 10
iterations (scikit-learn's and torchnmf's own cadence for their stopping test), and the bare
update steps in a ``fori_loop`` (no diagnostics).  Compile time is excluded (a warm-up call)
and reported separately.  All libraries start from the same (W0, H0) with their stopping
rules off.

    python benchmarks/mu_speed.py                 # 2000×1000, rank 20, 100 iterations, 5 reps
    python benchmarks/mu_speed.py --n 500 --m 300 --reps 3   # a quick look
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)

import jnmf  # noqa: E402
from jnmf.problem import Factors, make_problem  # noqa: E402


def make_data(n, m, r, dtype, seed=0):
    rng = np.random.default_rng(seed)
    V = rng.uniform(0, 1, (n, r)) @ rng.uniform(0, 1, (r, m))
    V = np.abs(V + 0.01 * V.std() * rng.standard_normal(V.shape)) + 1e-3
    scale = np.sqrt(V.mean() / r)
    W0 = np.abs(rng.standard_normal((n, r))) * scale
    H0 = np.abs(rng.standard_normal((r, m))) * scale
    return V.astype(dtype), W0.astype(dtype), H0.astype(dtype)


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def floor_fn(V, W, H, beta, iters):
    def frob_once():
        VHt = V @ H.T
        HHt = H @ H.T
        _ = W @ HHt
        WtV = W.T @ V
        WtW = W.T @ W
        _ = WtW @ H
        return VHt, WtV

    def kl_once():
        WH = W @ H
        Q = V / WH
        _ = Q @ H.T
        WH = W @ H
        _ = W.T @ Q

    once = frob_once if beta == 2.0 else kl_once

    def run():
        for _ in range(iters):
            once()

    return run


def xla_floor_fn(V, W0, H0, beta, iters):
    """The same products as ``floor_fn``, compiled by XLA in a loop (results kept live)."""
    V, W, H = jnp.asarray(V), jnp.asarray(W0), jnp.asarray(H0)

    def frob(i, acc):
        Wi, Hi = W + acc * 0, H + acc * 0  # data-dependent: no product is hoisted
        VHt = V @ Hi.T
        HHt = Hi @ Hi.T
        WtV = Wi.T @ V
        WtW = Wi.T @ Wi
        return acc + jnp.sum(Wi @ HHt) + jnp.sum(WtW @ Hi) + VHt[0, 0] + WtV[0, 0]

    def kl(i, acc):
        Wi, Hi = W + acc * 0, H + acc * 0  # data-dependent: no product is hoisted
        WH = Wi @ Hi
        Q = V / WH
        A = Q @ Hi.T
        WH2 = Wi @ Hi
        B = Wi.T @ (V / WH2)
        return acc + A[0, 0] + B[0, 0]

    body = frob if beta == 2.0 else kl

    @jax.jit
    def run(acc):
        return jax.lax.fori_loop(0, iters, body, acc)

    return lambda: jax.block_until_ready(run(jnp.zeros((), V.dtype)))


def jnmf_fns(V, W0, H0, beta, iters):
    problem = make_problem(V, beta).with_transpose_cache()  # as solve() does
    f0 = Factors(jnp.asarray(W0), jnp.asarray(H0))
    solver = jnmf.MultiplicativeUpdate()

    def run_solve(every):
        sol = jnmf.nmf(
            V, W0.shape[1], beta=beta, init=(W0, H0), max_iter=iters, tol=0.0, every=every
        )
        sol.W.block_until_ready()

    @eqx.filter_jit
    def bare(problem, f0):
        return jax.lax.fori_loop(0, iters, lambda i, f: solver.step(problem, f, None)[0], f0)

    def run_bare():
        jax.block_until_ready(bare(problem, f0))

    return {
        "jnmf (diag every it)": lambda: run_solve(1),
        "jnmf (diag every 10)": lambda: run_solve(10),
        "jnmf (bare steps)": run_bare,
    }


def sklearn_fn(V, W0, H0, beta, iters):
    from sklearn.decomposition import non_negative_factorization

    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            non_negative_factorization(
                V,
                W=W0.copy(),
                H=H0.copy(),
                n_components=W0.shape[1],
                init="custom",
                solver="mu",
                beta_loss=beta,
                tol=0,
                max_iter=iters,
            )

    return run


def torchnmf_fn(V, W0, H0, beta, iters):
    try:
        import torch
        from torchnmf.nmf import NMF
    except ImportError:
        return None
    torch.set_num_threads(2)
    Vt = torch.from_numpy(V)

    def run():
        # torchnmf writes V ≈ H Wᵀ with H: n×r and W: m×r
        model = NMF(W=torch.from_numpy(H0.T.copy()), H=torch.from_numpy(W0.copy()))
        model.fit(Vt, beta=beta, tol=0.0, max_iter=iters)

    return run


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--m", type=int, default=1000)
    p.add_argument("--rank", type=int, default=20)
    p.add_argument("--iters", type=int, default=100)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--dtypes", default="float32,float64")
    p.add_argument("--betas", default="2,1")
    args = p.parse_args()
    try:
        from threadpoolctl import threadpool_info, threadpool_limits

        threadpool_limits(2)
        print("threadpools:", [(d["internal_api"], d["num_threads"]) for d in threadpool_info()])
    except ImportError:
        pass
    print(
        f"jax {jax.__version__} on {jax.devices()[0].platform}; "
        f"V {args.n}×{args.m}, rank {args.rank}, {args.iters} iterations, {args.reps} reps"
    )
    print("XLA flushes subnormals to zero on CPU; NumPy/torch do not (data kept away from them).")
    rows = []
    for dtype in args.dtypes.split(","):
        for beta in (float(b) for b in args.betas.split(",")):
            V, W0, H0 = make_data(args.n, args.m, args.rank, dtype)
            fns = {
                "floor (NumPy products)": floor_fn(V, W0, H0, beta, args.iters),
                "floor (XLA products)": xla_floor_fn(V, W0, H0, beta, args.iters),
            }
            fns.update(jnmf_fns(V, W0, H0, beta, args.iters))
            fns["scikit-learn mu"] = sklearn_fn(V, W0, H0, beta, args.iters)
            tfn = torchnmf_fn(V, W0, H0, beta, args.iters)
            if tfn is not None:
                fns["torchnmf (CPU)"] = tfn
            compile_s = {k: timed(f) for k, f in fns.items()}  # warm-up incl. JIT
            times = {k: [] for k in fns}
            for _ in range(args.reps):
                for k, f in fns.items():
                    t = timed(f)
                    times[k].append(t / args.iters)
            floor = statistics.median(times["floor (NumPy products)"])
            xfloor = statistics.median(times["floor (XLA products)"])
            sk = statistics.median(times["scikit-learn mu"])
            print(f"\n{dtype}, beta={beta:g}  (ms/iteration, median of {args.reps})")
            print(
                f"{'':26s} {'ms/it':>8s} {'÷NumPy floor':>13s} {'÷XLA floor':>11s} "
                f"{'÷sklearn':>9s} {'warm-up s':>10s}"
            )
            for k, ts in times.items():
                med = statistics.median(ts)
                print(
                    f"{k:26s} {1e3 * med:8.2f} {med / floor:13.2f} {med / xfloor:11.2f} "
                    f"{med / sk:9.2f} {compile_s[k]:10.2f}"
                )
                rows.append((dtype, beta, k, 1e3 * med, med / floor, med / xfloor, med / sk))
    return rows


if __name__ == "__main__":
    main()
