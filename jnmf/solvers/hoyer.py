"""NMF with sparseness constraints (Hoyer 2004): the measure, its projection, and the solver.

Hoyer's sparseness of x ∈ ℝⁿ (n ≥ 2),

    s(x) = (√n − ‖x‖₁ / ‖x‖₂) / (√n − 1) ∈ [0, 1],

is 0 for a constant vector and 1 for a vector with a single non-zero entry; for a given L2
norm it fixes the L1 norm: ‖x‖₁ = ‖x‖₂ (√n − s (√n − 1)).

``project_norms(x, l1, l2)`` is Hoyer's projection: the non-negative vector with sum l1 and
Euclidean norm l2 closest to x.  Project onto the hyperplane Σ v = l1; then repeatedly move
from the centre of the active coordinates (l1 / #active on them, 0 elsewhere) along v − centre
to the sphere ‖v‖ = l2; if some coordinates are negative, set them (and keep them) at 0 and
re-project the rest onto the hyperplane.  Each round zeroes at least one more coordinate, so
at most n rounds are needed: a ``lax.while_loop`` capped at n runs it under ``jit``/``vmap``.

``SparseHoyer`` is Hoyer's ``nmfsc`` for ½‖V − WH‖²: rows of H have unit L2 norm (the scale
lives in W); a factor with a sparseness target takes a gradient step then projects (W columns
keep their L2 norm after the step and get L1 = L2 (√n − s_W(√n − 1)); H rows get L2 = 1), the
step halving until the objective does not increase and growing by 1.2 after each success; a
factor without a target takes a multiplicative update (denominator + ``eps``), after which H
rows are rescaled to unit norm (W columns inversely, so WH is unchanged).  Each step updates H,
then W.  The first step first moves the starting factors to the constraint set (unit H rows,
projected factors), as ``nmfsc`` does at initialization; after that the objective never
increases.  Differences from ``nmfsc``: step sizes start at 1/‖W‖_F² and 1/‖H‖_F² (the
inverse of a bound on the Lipschitz constants) rather than 1; ``max_halvings`` bounds the
search, after which the factor is left as it is for that step.
"""

from __future__ import annotations

import math
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from jnmf.optimality import gradient_parts_H, gradient_parts_W
from jnmf.problem import Factors, Problem, objective
from jnmf.solvers.base import AbstractSolver


def sparseness(x: Array, axis: int = -1) -> Array:
    """Hoyer's s(x) = (√n − ‖x‖₁/‖x‖₂)/(√n − 1) along ``axis`` (0 for a zero vector)."""
    x = jnp.asarray(x)
    n = x.shape[axis]
    if n < 2:
        raise ValueError(f"sparseness needs vectors of length ≥ 2, got length {n}")
    l1 = jnp.sum(jnp.abs(x), axis=axis)
    l2 = jnp.sqrt(jnp.sum(x * x, axis=axis))
    root = math.sqrt(n)
    ratio = l1 / jnp.where(l2 > 0, l2, 1.0)
    return jnp.where(l2 > 0, (root - ratio) / (root - 1.0), 0.0)


def l1_for_sparseness(n: int, sparseness_target, l2=1.0):
    """The L1 norm of a length-n vector with L2 norm ``l2`` and sparseness ``sparseness_target``."""
    root = math.sqrt(n)
    return l2 * (root - sparseness_target * (root - 1.0))


def _to_sphere(v: Array, zero: Array, l1, l2) -> Array:
    """v + α (v − c), α ≥ 0 the root with ‖·‖ = l2; c = l1/#active on the active set, 0 off it."""
    n_active = jnp.sum(~zero)
    centre = jnp.where(zero, 0.0, l1 / jnp.maximum(n_active, 1))
    w = v - centre
    a = jnp.sum(w * w)
    b = 2.0 * jnp.sum(w * v)
    c = jnp.sum(v * v) - l2 * l2
    root = jnp.sqrt(jnp.maximum(b * b - 4.0 * a * c, 0.0))
    # the larger root of a α² + b α + c, in the form without cancellation for b ≥ 0
    den = b + root
    alpha = jnp.where(
        b >= 0,
        -2.0 * c / jnp.where(den > 0, den, 1.0),
        (root - b) / (2.0 * jnp.where(a > 0, a, 1.0)),
    )
    alpha = jnp.where((a > 0) & jnp.isfinite(alpha), alpha, 0.0)
    return v + alpha * w


def _onto_plane(v: Array, zero: Array, l1) -> Array:
    """The active coordinates shifted so that their sum is l1; zeros kept at 0."""
    v = jnp.where(zero, 0.0, v)
    n_active = jnp.maximum(jnp.sum(~zero), 1)
    return jnp.where(zero, 0.0, v + (l1 - jnp.sum(v)) / n_active)


def _project_vector(x: Array, l1: Array, l2: Array) -> Array:
    n = x.shape[0]
    zero0 = jnp.zeros(n, dtype=bool)
    v0 = _onto_plane(x, zero0, l1)

    def cond(c):
        i, _, _, done = c
        return (i < n) & ~done

    def body(c):
        i, v, zero, _ = c
        v = _to_sphere(v, zero, l1, l2)
        done = jnp.all(v >= 0)
        new_zero = zero | (v <= 0)
        v = jnp.where(done, v, _onto_plane(v, new_zero, l1))
        zero = jnp.where(done, zero, new_zero)
        return i + 1, v, zero, done

    init = (jnp.asarray(0, jnp.int32), v0, zero0, jnp.asarray(False))
    _, v, _, _ = jax.lax.while_loop(cond, body, init)
    return jnp.maximum(v, 0.0)


def project_norms(x: Array, l1, l2) -> Array:
    """The non-negative vector y with Σ y = l1 and ‖y‖₂ = l2 closest to x (Hoyer 2004).

    Works on the last axis (leading axes are batched).  Needs l2 ≤ l1 ≤ √n l2 (checked when
    the values are Python numbers).
    """
    x = jnp.asarray(x)
    if x.shape[-1] < 2:
        raise ValueError(f"project_norms needs vectors of length ≥ 2, got length {x.shape[-1]}")
    if isinstance(l1, (int, float)) and isinstance(l2, (int, float)):
        n = x.shape[-1]
        if not (0 < l2 and l2 * (1 - 1e-12) <= l1 <= math.sqrt(n) * l2 * (1 + 1e-12)):
            raise ValueError(
                f"no non-negative vector of length {n} has L1 norm {l1} and L2 norm {l2}: "
                "need 0 < l2 ≤ l1 ≤ √n·l2"
            )
    l1 = jnp.asarray(l1, x.dtype)
    l2 = jnp.asarray(l2, x.dtype)
    return jnp.vectorize(_project_vector, signature="(n),(),()->(n)")(x, l1, l2)


def project_sparseness(x: Array, sparseness_target, l2=1.0) -> Array:
    """The non-negative y closest to x with s(y) = ``sparseness_target`` and ‖y‖₂ = ``l2``.

    Along the last axis; ``sparseness_target`` in [0, 1].
    """
    x = jnp.asarray(x)
    n = x.shape[-1]
    if n < 2:
        raise ValueError(f"project_sparseness needs vectors of length ≥ 2, got length {n}")
    _check_target(sparseness_target, "sparseness_target")
    return project_norms(x, l1_for_sparseness(n, sparseness_target, l2), l2)


def _check_target(value, name: str) -> None:
    if isinstance(value, (int, float)) and not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {value}")


class _HoyerState(eqx.Module):
    step_W: Array
    step_H: Array
    count: Array


def _unit_rows(W: Array, H: Array) -> tuple[Array, Array]:
    """Rescale H rows to unit L2 norm and W columns inversely (WH unchanged)."""
    norms = jnp.sqrt(jnp.sum(H * H, axis=1))
    norms = jnp.where(norms > 0, norms, 1.0)
    return W * norms[None, :], H / norms[:, None]


def _project_H(H: Array, target) -> Array:
    """Each row of H: sparseness ``target``, unit L2 norm."""
    return project_norms(H, l1_for_sparseness(H.shape[1], target), 1.0)


def _project_W(W: Array, target) -> Array:
    """Each column of W: sparseness ``target``, its own L2 norm kept."""
    norms = jnp.sqrt(jnp.sum(W * W, axis=0))
    l1 = l1_for_sparseness(W.shape[0], target, norms)
    return project_norms(W.T, l1, norms).T


class SparseHoyer(AbstractSolver):
    """Hoyer's (2004) NMF with sparseness constraints, for ½‖V − WH‖² (β = 2).

    ``sparseness_W`` constrains every column of W, ``sparseness_H`` every row of H (values in
    [0, 1]; None leaves the factor unconstrained, updated multiplicatively).  Entry weights are
    supported (gradients and objective come from the weighted problem); penalties are not.
    """

    sparseness_W: float | None = None
    sparseness_H: float | None = None
    eps: float = 1e-9
    max_halvings: int = eqx.field(default=60, static=True)

    def __check_init__(self):
        _check_target(self.sparseness_W, "sparseness_W")
        _check_target(self.sparseness_H, "sparseness_H")

    betas: ClassVar = (2.0,)
    penalties: ClassVar = False
    monotone: ClassVar = False  # the first step moves the start onto the constraint set
    scale_equivariant: ClassVar = False  # rows of H have unit norm whatever the scale of V

    def check_problem(self, problem: Problem) -> None:
        n, m = problem.shape
        if self.sparseness_W is not None and n < 2:
            raise ValueError("sparseness_W needs V with at least 2 rows")
        if self.sparseness_H is not None and m < 2:
            raise ValueError("sparseness_H needs V with at least 2 columns")

    def init(self, problem: Problem, factors: Factors) -> _HoyerState:
        W, H = _unit_rows(*factors)
        dtype = problem.dtype
        return _HoyerState(
            step_W=1.0 / jnp.maximum(jnp.sum(H * H), jnp.finfo(dtype).tiny),
            step_H=1.0 / jnp.maximum(jnp.sum(W * W), jnp.finfo(dtype).tiny),
            count=jnp.asarray(0, jnp.int32),
        )

    def _start(self, W: Array, H: Array) -> tuple[Array, Array]:
        W, H = _unit_rows(W, H)
        if self.sparseness_H is not None:
            H = _project_H(H, self.sparseness_H)
        if self.sparseness_W is not None:
            W = _project_W(W, self.sparseness_W)
        return W, H

    def _descend(self, value, X, G, step, project):
        """Hoyer's search: X ← project(X − μG), μ halved until f does not increase."""
        f0 = value(X)

        def trial(mu):
            Xn = project(X - mu * G)
            return Xn, value(Xn)

        def cond(c):
            i, _, _, f = c
            return (i < self.max_halvings) & ~(f <= f0)

        def body(c):
            i, mu, _, _ = c
            mu = 0.5 * mu
            Xn, f = trial(mu)
            return i + 1, mu, Xn, f

        Xn, f = trial(step)
        init = (jnp.asarray(0, jnp.int32), step, Xn, f)
        _, mu, Xn, f = jax.lax.while_loop(cond, body, init)
        ok = f <= f0
        return jnp.where(ok, Xn, X), jnp.where(ok, 1.2 * mu, mu)

    def step(self, problem: Problem, factors: Factors, state: _HoyerState):
        W, H = factors
        W, H = jax.lax.cond(
            state.count == 0, lambda W, H: self._start(W, H), lambda W, H: (W, H), W, H
        )
        step_W, step_H = state.step_W, state.step_H

        P, N = gradient_parts_H(problem, W, H)
        if self.sparseness_H is not None:
            H, step_H = self._descend(
                lambda X: objective(problem, Factors(W, X)),
                H,
                P - N,
                step_H,
                lambda X: _project_H(X, self.sparseness_H),
            )
        else:
            H = H * N / (P + self.eps)
            W, H = _unit_rows(W, H)

        P, N = gradient_parts_W(problem, W, H)
        if self.sparseness_W is not None:
            W, step_W = self._descend(
                lambda X: objective(problem, Factors(X, H)),
                W,
                P - N,
                step_W,
                lambda X: _project_W(X, self.sparseness_W),
            )
        else:
            W = W * N / (P + self.eps)
        return Factors(W, H), _HoyerState(step_W, step_H, state.count + 1)
