"""Initial factors.  Every initializer takes an explicit PRNG key and is pure (vmappable).

- ``random``: W, H = |N(0, 1)| · √(mean V / r), as scikit-learn scales them.
- ``nndsvd``: Boutsidis & Gallopoulos (2008) non-negative double SVD; zeros stay zeros.
- ``nndsvda``: NNDSVD with zeros filled by mean V (better for MU, which cannot leave 0).
- ``nndsvdar``: NNDSVD with zeros filled by |N(0, 1)| · mean V / 100.
- a tuple ``(W0, H0)``: user factors, checked for shape and sign.

With entry weights, "mean V" is the weighted mean over observed entries.

For a sparse V the NNDSVD methods take the leading singular triplets from a subspace
iteration built from sparse products only (``sparse_svd``: V X and Vᵀ Y, never an n×m
array); for min(n, m) ≤ ``SVD_FULL_RANGE`` it spans V's whole range and gives the SVD to
rounding (as the dense path's), otherwise its accuracy depends on the spectral gap after
the r-th singular value.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from jnmf import sparse
from jnmf.checks import check_factors, check_key, check_rank
from jnmf.problem import Factors, Problem

INITS = ("random", "nndsvd", "nndsvda", "nndsvdar")


# Subspace iteration for the SVD of a sparse V: columns beyond the rank, power steps, and
# the size up to which the subspace is V's whole range (then the SVD is exact to rounding).
SVD_OVERSAMPLE = 10
SVD_POWER_STEPS = 8
SVD_FULL_RANGE = 128


def data_mean(problem: Problem) -> Array:
    """Mean of V (weighted mean over observed entries when weights are given)."""
    return problem.data_mean()


def sparse_svd(V, rank: int) -> tuple[Array, Array, Array]:
    """The leading ``rank`` singular triplets (U n×r, S (r,), Vt r×m) of a sparse V.

    Randomized subspace iteration (Halko, Martinsson & Tropp 2011): Q = orth(V Ω) with
    Ω (m×k) Gaussian from a fixed key, then ``SVD_POWER_STEPS`` steps Q ← orth(V orth(Vᵀ Q)),
    and the SVD of the small k×m matrix B = Qᵀ V = (Vᵀ Q)ᵀ gives V ≈ (Q U_B) S Vt.
    k = min(n, m, rank + ``SVD_OVERSAMPLE``); when k = min(n, m) no power step is needed.
    Only products V X and Vᵀ Y are formed (``jnmf.sparse``).
    """
    n, m = V.shape
    full = min(n, m) <= SVD_FULL_RANGE
    k = min(n, m) if full else min(n, m, rank + SVD_OVERSAMPLE)
    data = V.data

    def times(X):  # V X, X (m×k)
        return sparse.right_product(V, data, X.T)

    def times_t(Y):  # Vᵀ Y, Y (n×k)
        return sparse.left_product(Y, V, data).T

    omega = jax.random.normal(jax.random.PRNGKey(0), (m, k), data.dtype)
    Q, _ = jnp.linalg.qr(times(omega))
    steps = 0 if k == min(n, m) else SVD_POWER_STEPS
    for _ in range(steps):
        Z, _ = jnp.linalg.qr(times_t(Q))
        Q, _ = jnp.linalg.qr(times(Z))
    B = times_t(Q).T
    Ub, S, Vt = jnp.linalg.svd(B, full_matrices=False)
    return (Q @ Ub)[:, :rank], S[:rank], Vt[:rank, :]


def _random_factors(avg, shape, rank: int, normal, xp):
    """W, H = |N(0, 1)| · √(avg / r); ``normal(i, shape)`` draws the i-th factor's normals
    and ``xp`` is ``jax.numpy`` or ``numpy`` (the same formula on the device and the host)."""
    n, m = shape
    scale = xp.sqrt(avg / rank)
    return scale * xp.abs(normal(0, (n, rank))), scale * xp.abs(normal(1, (rank, m)))


def _nndsvd_factors(U, S, Vt, avg, fill: str | None, normal, xp):
    """NNDSVD from the leading singular triplets (U n×r, S, Vt r×m), ``fill`` in
    {None, 'a', 'ar'}; ``normal`` and ``xp`` as in ``_random_factors``."""
    up, un = xp.maximum(U, 0.0), xp.maximum(-U, 0.0)
    vp, vn = xp.maximum(Vt, 0.0), xp.maximum(-Vt, 0.0)
    nup, nun = xp.linalg.norm(up, axis=0), xp.linalg.norm(un, axis=0)
    nvp, nvn = xp.linalg.norm(vp, axis=1), xp.linalg.norm(vn, axis=1)
    mp, mn = nup * nvp, nun * nvn
    use_pos = mp > mn
    safe = lambda x: xp.where(x > 0, x, 1.0)  # noqa: E731
    u = xp.where(use_pos, up / safe(nup), un / safe(nun))
    v = xp.where(use_pos[:, None], vp / safe(nvp)[:, None], vn / safe(nvn)[:, None])
    lam = xp.sqrt(S * xp.where(use_pos, mp, mn))
    # the leading pair is non-negative up to sign
    lead = xp.sqrt(S[0])
    W = xp.concatenate([lead * xp.abs(U[:, :1]), (lam * u)[:, 1:]], axis=1)
    H = xp.concatenate([lead * xp.abs(Vt[:1, :]), (lam[:, None] * v)[1:, :]], axis=0)
    W = xp.where(W < 1e-6, 0.0, W)
    H = xp.where(H < 1e-6, 0.0, H)
    if fill is None:
        return W, H
    if fill == "a":
        return xp.where(W == 0, avg, W), xp.where(H == 0, avg, H)
    rW = xp.abs(avg * normal(0, W.shape) / 100)
    rH = xp.abs(avg * normal(1, H.shape) / 100)
    return xp.where(W == 0, rW, W), xp.where(H == 0, rH, H)


def _device_normal(key: Array, dtype):
    keys = jax.random.split(key)
    return lambda i, shape: jax.random.normal(keys[i], shape, dtype)


def random_init(key: Array, problem: Problem, rank: int) -> Factors:
    """|N(0,1)| entries scaled by √(mean V / r) (scikit-learn's ``init='random'``)."""
    normal = _device_normal(key, problem.dtype)
    return Factors(*_random_factors(data_mean(problem), problem.shape, rank, normal, jnp))


def nndsvd_init(key: Array, problem: Problem, rank: int, fill: str | None = None) -> Factors:
    """NNDSVD from the leading ``rank`` singular triplets of V; ``fill`` in {None, 'a', 'ar'}.

    A sparse V takes its triplets from ``sparse_svd``.

    For each triplet (σ, u, v) after the first, keep the sign pattern (u₊v₊ᵀ or u₋v₋ᵀ) with the
    larger norm product; entries below 1e-6 are set to 0 as scikit-learn does.
    """
    if problem.is_sparse:
        U, S, Vt = sparse_svd(problem.V, rank)
    else:
        U, S, Vt = jnp.linalg.svd(problem.data(), full_matrices=False)
        U, S, Vt = U[:, :rank], S[:rank], Vt[:rank, :]
    avg = data_mean(problem) if fill is not None else None
    normal = _device_normal(key, problem.dtype)
    return Factors(*_nndsvd_factors(U, S, Vt, avg, fill, normal, jnp))


def host_initialize(
    rng: np.random.Generator, V: np.ndarray, rank: int, method: str
) -> tuple[np.ndarray, np.ndarray]:
    """``initialize`` in NumPy for a dense, unweighted V on the host: the same formulas, with
    normals from ``rng`` instead of a JAX key (so not the same draws), and no compilation —
    what a small fit's start costs most of (a compiled start took 0.1–0.25 s to compile and
    microseconds to run)."""
    if method not in INITS:
        raise ValueError(f"unknown init {method!r}: use one of {INITS} or a tuple (W0, H0)")
    rank = check_rank(rank, V.shape, method)
    V = np.asarray(V)
    dtype = V.dtype

    def normal(_, shape):
        return rng.standard_normal(shape).astype(dtype, copy=False)

    avg = V.mean(dtype=dtype)
    if method == "random":
        W, H = _random_factors(avg, V.shape, rank, normal, np)
    else:
        U, S, Vt = np.linalg.svd(V, full_matrices=False)
        fill = {"nndsvd": None, "nndsvda": "a", "nndsvdar": "ar"}[method]
        W, H = _nndsvd_factors(U[:, :rank], S[:rank], Vt[:rank], avg, fill, normal, np)
    return W.astype(dtype, copy=False), H.astype(dtype, copy=False)


def initialize(key: Array, problem: Problem, rank: int, method: str) -> Factors:
    """Dispatch on ``method`` (one of ``INITS``); pure in ``key``.

    ``key`` is a PRNG key or an integer seed; ``rank`` an integer ≥ 1 (≤ min(n, m) for the
    NNDSVD methods, which use r singular triplets of V).  Raises ``ValueError`` otherwise.
    """
    if method not in INITS:
        raise ValueError(f"unknown init {method!r}: use one of {INITS} or a tuple (W0, H0)")
    rank = check_rank(rank, problem.shape, method)
    key = check_key(key)
    if method == "random":
        return random_init(key, problem, rank)
    if method == "nndsvd":
        return nndsvd_init(key, problem, rank)
    if method == "nndsvda":
        return nndsvd_init(key, problem, rank, "a")
    return nndsvd_init(key, problem, rank, "ar")


def check_init(init, shape: tuple[int, int], rank: int, dtype) -> Factors | str:
    """Validate ``init`` (a name or ``(W0, H0)``) before compiling; return a name or Factors.

    With a name, ``rank`` is checked (≤ min(n, m) for NNDSVD); with factors, their shapes,
    signs and finiteness (``jnmf.checks.check_factors``).
    """
    if isinstance(init, str):
        if init not in INITS:
            raise ValueError(f"unknown init {init!r}: use one of {INITS} or a tuple (W0, H0)")
        check_rank(rank, shape, init)
        return init
    if isinstance(init, (tuple, list)) and len(init) == 2:
        check_rank(rank)
        return Factors(*check_factors(init[0], init[1], shape, rank, dtype=dtype))
    raise ValueError(f"init must be one of {INITS} or a tuple (W0, H0), got {type(init).__name__}")
