"""Initial factors.  Every initializer takes an explicit PRNG key and is pure (vmappable).

- ``random``: W, H = |N(0, 1)| · √(mean V / r), as scikit-learn scales them.
- ``nndsvd``: Boutsidis & Gallopoulos (2008) non-negative double SVD; zeros stay zeros.
- ``nndsvda``: NNDSVD with zeros filled by mean V (better for MU, which cannot leave 0).
- ``nndsvdar``: NNDSVD with zeros filled by |N(0, 1)| · mean V / 100.
- a tuple ``(W0, H0)``: user factors, checked for shape and sign.

With entry weights, "mean V" is the weighted mean over observed entries.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from jnmf.problem import Factors, Problem, as_float_array, check_matrix

INITS = ("random", "nndsvd", "nndsvda", "nndsvdar")


def data_mean(problem: Problem) -> Array:
    """Mean of V (weighted mean over observed entries when weights are given)."""
    if problem.weights is None:
        return jnp.mean(problem.V)
    M = problem.weights
    return jnp.sum(M * problem.data()) / jnp.sum(M)


def random_init(key: Array, problem: Problem, rank: int) -> Factors:
    """|N(0,1)| entries scaled by √(mean V / r) (scikit-learn's ``init='random'``)."""
    n, m = problem.shape
    scale = jnp.sqrt(data_mean(problem) / rank)
    kW, kH = jax.random.split(key)
    W = scale * jnp.abs(jax.random.normal(kW, (n, rank), problem.dtype))
    H = scale * jnp.abs(jax.random.normal(kH, (rank, m), problem.dtype))
    return Factors(W, H)


def nndsvd_init(key: Array, problem: Problem, rank: int, fill: str | None = None) -> Factors:
    """NNDSVD from the leading ``rank`` singular triplets of V; ``fill`` in {None, 'a', 'ar'}.

    For each triplet (σ, u, v) after the first, keep the sign pattern (u₊v₊ᵀ or u₋v₋ᵀ) with the
    larger norm product; entries below 1e-6 are set to 0 as scikit-learn does.
    """
    V = problem.data()
    U, S, Vt = jnp.linalg.svd(V, full_matrices=False)
    U, S, Vt = U[:, :rank], S[:rank], Vt[:rank, :]
    up, un = jnp.maximum(U, 0.0), jnp.maximum(-U, 0.0)
    vp, vn = jnp.maximum(Vt, 0.0), jnp.maximum(-Vt, 0.0)
    nup, nun = jnp.linalg.norm(up, axis=0), jnp.linalg.norm(un, axis=0)
    nvp, nvn = jnp.linalg.norm(vp, axis=1), jnp.linalg.norm(vn, axis=1)
    mp, mn = nup * nvp, nun * nvn
    use_pos = mp > mn
    safe = lambda x: jnp.where(x > 0, x, 1.0)  # noqa: E731
    u = jnp.where(use_pos, up / safe(nup), un / safe(nun))
    v = jnp.where(use_pos[:, None], vp / safe(nvp)[:, None], vn / safe(nvn)[:, None])
    sigma = jnp.where(use_pos, mp, mn)
    lam = jnp.sqrt(S * sigma)
    W = lam * u
    H = lam[:, None] * v
    # the leading pair is non-negative up to sign
    W = W.at[:, 0].set(jnp.sqrt(S[0]) * jnp.abs(U[:, 0]))
    H = H.at[0, :].set(jnp.sqrt(S[0]) * jnp.abs(Vt[0, :]))
    W = jnp.where(W < 1e-6, 0.0, W)
    H = jnp.where(H < 1e-6, 0.0, H)
    if fill is None:
        return Factors(W, H)
    avg = data_mean(problem)
    if fill == "a":
        return Factors(jnp.where(W == 0, avg, W), jnp.where(H == 0, avg, H))
    kW, kH = jax.random.split(key)
    rW = jnp.abs(avg * jax.random.normal(kW, W.shape, W.dtype) / 100)
    rH = jnp.abs(avg * jax.random.normal(kH, H.shape, H.dtype) / 100)
    return Factors(jnp.where(W == 0, rW, W), jnp.where(H == 0, rH, H))


def initialize(key: Array, problem: Problem, rank: int, method: str) -> Factors:
    """Dispatch on ``method`` (one of ``INITS``); pure in ``key``."""
    if method == "random":
        return random_init(key, problem, rank)
    if method == "nndsvd":
        return nndsvd_init(key, problem, rank)
    if method == "nndsvda":
        return nndsvd_init(key, problem, rank, "a")
    if method == "nndsvdar":
        return nndsvd_init(key, problem, rank, "ar")
    raise ValueError(f"unknown init {method!r}: use one of {INITS} or a tuple (W0, H0)")


def check_init(init, shape: tuple[int, int], rank: int, dtype) -> Factors | str:
    """Validate ``init`` (a name or ``(W0, H0)``) before compiling; return a name or Factors."""
    n, m = shape
    if isinstance(init, str):
        if init not in INITS:
            raise ValueError(f"unknown init {init!r}: use one of {INITS} or a tuple (W0, H0)")
        if init.startswith("nndsvd") and rank > min(n, m):
            raise ValueError(
                f"init={init!r} needs rank ≤ min(n, m) = {min(n, m)}, got rank {rank}; "
                "use init='random' for a larger rank"
            )
        return init
    if isinstance(init, (tuple, list)) and len(init) == 2:
        W0 = as_float_array(init[0], "W0").astype(dtype)
        H0 = as_float_array(init[1], "H0").astype(dtype)
        if W0.shape != (n, rank) or H0.shape != (rank, m):
            raise ValueError(
                f"init factors must have shapes W0 {(n, rank)} and H0 {(rank, m)} for V of "
                f"shape {shape} and rank {rank}; got W0 {tuple(W0.shape)}, H0 {tuple(H0.shape)}"
            )
        check_matrix(W0, "W0")
        check_matrix(H0, "H0")
        if isinstance(W0, jax.core.Tracer) or isinstance(H0, jax.core.Tracer):
            return Factors(W0, H0)
        if not (np.asarray(W0).any() and np.asarray(H0).any()):
            raise ValueError("init factors W0 and H0 must not be all zero")
        return Factors(W0, H0)
    raise ValueError(f"init must be one of {INITS} or a tuple (W0, H0), got {type(init).__name__}")
