"""Time to a target KL error: jnmf "mu", "kl-cd", "kl-dna" vs scikit-learn's KL "mu".

Data: V ~ Poisson(W₀ H₀), W₀, H₀ ~ Gamma(1, 1) scaled so that mean(W₀ H₀) = ``--mean``.
Every method starts from the same W, H = |N(0,1)|·√(mean V / r) and updates W then H.
Error e(t) = D_KL(V‖WH) / ΣV, computed in float64 outside the timed part.  e_min = the best
error seen by any method, including a long reference run (``--ref-iters`` kl-dna steps);
"iterations to τ" is the first recorded iteration with e − e_min ≤ τ.

Time to τ = iterations to τ × the median time of one iteration.  Per-iteration cost is
constant for all these methods (fixed work, no line searches with variable trip counts), so
it is measured separately: a block of ``--block`` iterations per method, the methods
interleaved within each of ``--reps`` repetitions, median per iteration (wall clock,
``block_until_ready``, compile excluded).  jnmf is timed as its bare ``step`` in a jitted
``fori_loop`` (no diagnostics); scikit-learn as ``non_negative_factorization(...,
solver="mu", beta_loss=1, init="custom", tol=0, max_iter=block)``.  The trajectories
(errors per iteration) come from untimed runs continued checkpoint to checkpoint; MU is
stateless, so restarting scikit-learn from its own last iterate is the same algorithm.
Threads: XLA uses the machine's 2 cores; scikit-learn is timed with 1 and with ``--threads``
BLAS threads (threadpoolctl) and the faster is the baseline: on a loaded shared machine
2-thread OpenBLAS was measured 20-35× slower than 1 thread (spinning workers).  NumPy does
not flush subnormals and XLA does; on this Poisson data factors stay far from them.

    python benchmarks/kl_speed.py                        # 2000×1000, rank 20, float32
    python benchmarks/kl_speed.py --n 1000 --m 500 --dtype float64

Measured 2026-11-29 on the shared 2-core machine (load average 3-5; medians of 5), time to
τ = 1e-3 as scikit-learn's time divided by jnmf's (> 1: jnmf faster):

    1000×500  float32: mu 0.84, kl-cd 1.04, kl-dna 2.75   (sklearn 1.71 ms/it, 644 its)
    1000×500  float64: mu 0.99, kl-cd 1.00, kl-dna 1.69   (sklearn 6.51 ms/it)
    2000×1000 float32: mu 1.29, kl-cd 1.74, kl-dna 3.34   (sklearn 27.7 ms/it, 1109 its)
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

from jnmf.problem import Factors, make_problem  # noqa: E402
from jnmf.solvers import get_solver  # noqa: E402

JNMF = ("mu", "kl-cd", "kl-dna")
TAUS = (1e-2, 1e-3, 1e-4)


def make_data(n, m, r, mean, dtype, seed=0):
    rng = np.random.default_rng(seed)
    L = rng.gamma(1.0, 1.0, (n, r)) @ rng.gamma(1.0, 1.0, (r, m))
    V = rng.poisson(L * (mean / L.mean())).astype(np.float64)
    scale = np.sqrt(V.mean() / r)
    W0 = np.abs(rng.standard_normal((n, r))) * scale
    H0 = np.abs(rng.standard_normal((r, m))) * scale
    return V.astype(dtype), W0.astype(dtype), H0.astype(dtype)


def kl_error(V64, W, H):
    """D_KL(V‖WH) / ΣV in float64."""
    Y = np.asarray(W, np.float64) @ np.asarray(H, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(V64 > 0, V64 * np.log(V64 / Y), 0.0)
    return float((t - V64 + Y).sum() / V64.sum())


def jnmf_runner(name):
    solver = get_solver(name)

    @eqx.filter_jit
    def run(problem, W, H, k):
        factors = Factors(W, H)
        state = solver.init(problem, factors)

        def body(_, c):
            return solver.step(problem, c[0], c[1])

        return jax.lax.fori_loop(0, k, body, (factors, state))[0]

    return run


def sklearn_runner(threads):
    from sklearn.decomposition import non_negative_factorization
    from threadpoolctl import threadpool_limits

    def run(V, W, H, k):
        with threadpool_limits(threads), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            W, H, _ = non_negative_factorization(
                V, W=W.copy(), H=H.copy(), n_components=W.shape[1], init="custom",
                solver="mu", beta_loss=1, tol=0.0, max_iter=k,
            )  # fmt: skip
        return W, H

    return run


def checkpoints(limit):
    ks, k = [], 1
    while k <= limit:
        ks.append(k)
        k = k + 1 if k < 20 else int(np.ceil(k * 1.08))
    return ks


def trajectory(step_fn, W, H, limit, V64):
    """Errors at the checkpoints up to ``limit`` iterations, continuing from each."""
    errs, done = {}, 0
    for k in checkpoints(limit):
        W, H = step_fn(W, H, k - done)
        done = k
        errs[k] = kl_error(V64, W, H)
    return errs, (W, H)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--m", type=int, default=1000)
    ap.add_argument("--rank", type=int, default=20)
    ap.add_argument("--mean", type=float, default=5.0)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--block", type=int, default=20)
    ap.add_argument("--mu-iters", type=int, default=3000, help="cap for MU trajectories")
    ap.add_argument("--fast-iters", type=int, default=400, help="cap for kl-cd, kl-dna")
    ap.add_argument("--ref-iters", type=int, default=1500)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    dtype = np.dtype(args.dtype)
    V, W0, H0 = make_data(args.n, args.m, args.rank, args.mean, dtype)
    V64 = V.astype(np.float64)
    problem = make_problem(jnp.asarray(V), 1.0).with_transpose_cache()
    print(f"V {args.n}×{args.m} Poisson(mean {args.mean}), rank {args.rank}, {args.dtype}")
    try:
        from threadpoolctl import threadpool_info

        print("threadpools:", [(p["internal_api"], p["num_threads"]) for p in threadpool_info()])
    except ImportError:
        pass

    runners = {name: jnmf_runner(name) for name in JNMF}
    Wj, Hj = jnp.asarray(W0), jnp.asarray(H0)

    def jstep(name):
        def f(W, H, k):
            out = runners[name](problem, W, H, k)
            return out.W, out.H

        return f

    # compile (excluded from the race), reported on its own
    for name in JNMF:
        t0 = time.perf_counter()
        jax.block_until_ready(runners[name](problem, Wj, Hj, 1))
        print(f"compile+1 step {name}: {time.perf_counter() - t0:.2f} s")

    # per-iteration time: interleaved blocks, medians
    sk_threads = sorted({1, args.threads})
    sks = {t: sklearn_runner(t) for t in sk_threads}
    times = {name: [] for name in (*JNMF, *sk_threads)}
    for _ in range(args.reps):
        for name in JNMF:
            t0 = time.perf_counter()
            jax.block_until_ready(runners[name](problem, Wj, Hj, args.block))
            times[name].append((time.perf_counter() - t0) / args.block)
        for threads in sk_threads:
            t0 = time.perf_counter()
            sks[threads](V, W0, H0, args.block)
            times[threads].append((time.perf_counter() - t0) / args.block)
    per_it = {k: statistics.median(v) for k, v in times.items() if k in JNMF}
    for threads in sk_threads:
        ms = statistics.median(times[threads]) * 1e3
        print(f"scikit-learn mu, {threads} BLAS thread(s): {ms:.2f} ms/it")
    best = min(sk_threads, key=lambda t: statistics.median(times[t]))
    per_it["sklearn-mu"] = statistics.median(times[best])
    print(f"baseline: scikit-learn with {best} thread(s), the faster here")

    # trajectories (untimed)
    traj = {}
    for name in JNMF:
        limit = args.mu_iters if name == "mu" else args.fast_iters
        traj[name], _ = trajectory(jstep(name), Wj, Hj, limit, V64)
    sk_fast = sks[sk_threads[0]]  # 1 thread: the trajectory does not depend on threads
    traj["sklearn-mu"], _ = trajectory(
        lambda W, H, k: sk_fast(V, W, H, k), W0, H0, args.mu_iters, V64
    )
    W64, H64 = jnp.asarray(W0, jnp.float64), jnp.asarray(H0, jnp.float64)
    ref = runners["kl-dna"](make_problem(jnp.asarray(V64), 1.0), W64, H64, args.ref_iters)
    e_ref = kl_error(V64, ref.W, ref.H)
    e_min = min(e_ref, *(min(t.values()) for t in traj.values()))
    print(f"e_min = {e_min:.8f} (float64 reference run of kl-dna: {e_ref:.8f})")

    head = f"{'method':>11} {'ms/it':>7}" + "".join(
        f" | τ={tau:g}: {'its':>5} {'s':>7} {'sk/x':>6}" for tau in TAUS
    )
    print(head)
    to = {}
    for name, errs in traj.items():
        row = []
        for tau in TAUS:
            its = next((k for k, e in errs.items() if e - e_min <= tau), None)
            to[name, tau] = None if its is None else its * per_it[name]
            row.append(its)
        to[name, "its"] = row
    for name in traj:
        line = f"{name:>11} {per_it[name] * 1e3:7.2f}"
        for tau, its in zip(TAUS, to[name, "its"], strict=True):
            t, t_sk = to[name, tau], to["sklearn-mu", tau]
            if t is None:
                line += f" | τ={tau:g}: {'>cap':>5} {'-':>7} {'-':>6}"
                continue
            ratio = f"{t_sk / t:6.2f}" if t_sk is not None else "  >   "
            line += f" | τ={tau:g}: {its:5d} {t:7.2f} {ratio}"
        print(line)
    print("sk/x = scikit-learn's time to τ divided by this method's (> 1: faster than sklearn)")


if __name__ == "__main__":
    main()
