"""The shared loop: ``solve(problem, solver, factors, ...) -> Solution``.

One ``lax.while_loop`` runs the solver's ``step``.  Every ``every`` iterations (and at the
last) it evaluates the objective and the stationarity measures (``optimality.evaluate``),
writes them at their index into fixed-size history buffers (NaN beyond the stop), and
tests the stopping rules:

* relative objective decrease |f_prev − f| / |f_prev| < ``tol`` between two evaluations;
* relative KKT residual ‖min(X, ∇f)‖ / ‖min(X₀, ∇f(X₀))‖ < ``kkt_tol``;
* ``max_iter`` iterations;
* a non-finite iterate: the loop stops, returns the last finite factors and reports
  ``Status.NONFINITE`` (never a silent success).

``max_iter`` and ``every`` are static (they size the buffers); ``tol`` and ``kkt_tol`` are
traced, so changing them does not recompile.  Evaluating costs about one solver iteration
(it forms WH and both gradients); ``every=10`` amortizes it as scikit-learn does.
"""

from __future__ import annotations

import enum
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from jnmf.optimality import evaluate
from jnmf.problem import Factors, Problem
from jnmf.solvers.base import AbstractSolver


class Status(enum.IntEnum):
    """Why a solve stopped."""

    CONVERGED = 0  # objective decrease below tol, or KKT residual below kkt_tol
    MAX_ITER = 1
    NONFINITE = 2
    RUNNING = -1


class History(eqx.Module):
    """Per-evaluation diagnostics; entry k is iteration min((k+1)·every, max_iter).

    ``objective``: f; ``kkt``: ‖min(X, ∇f)‖ relative to the start; ``pg``: Lin's projected
    gradient norm relative to the start; ``rel_change``: ‖X_k − X_{k−1}‖/‖X_{k−1}‖ over both
    factors since the previous evaluation.  NaN after the stop.
    """

    objective: Array
    kkt: Array
    pg: Array
    rel_change: Array
    objective0: Array
    kkt0: Array
    pg0: Array
    every: int = eqx.field(static=True, default=1)
    max_iter: int = eqx.field(static=True, default=0)

    def iterations(self) -> np.ndarray:
        """Iteration numbers of the entries (1-based), as a NumPy array."""
        n = self.objective.shape[-1]
        return np.minimum((np.arange(n) + 1) * self.every, self.max_iter)


class Solution(eqx.Module):
    """The result of ``solve``: factors, final objective, status and history."""

    W: Array
    H: Array
    objective: Array
    n_iter: Array
    status: Array
    history: History
    restart_objectives: Array | None = None

    @property
    def factors(self) -> Factors:
        return Factors(self.W, self.H)

    @property
    def converged(self) -> Array:
        return self.status == Status.CONVERGED


def _all_finite(factors: Factors) -> Array:
    return jnp.all(jnp.isfinite(factors.W)) & jnp.all(jnp.isfinite(factors.H))


def _sq(factors: Factors) -> Array:
    return jnp.sum(factors.W**2) + jnp.sum(factors.H**2)


def _select(pred, a, b):
    return jax.tree_util.tree_map(lambda x, y: jnp.where(pred, x, y), a, b)


def solve(
    problem: Problem,
    solver: AbstractSolver,
    factors: Factors,
    *,
    max_iter: int = 200,
    tol=1e-4,
    kkt_tol=0.0,
    every: int = 1,
) -> Solution:
    """Run ``solver`` from ``factors`` on ``problem``; pure, jit- and vmap-friendly.

    Returns a ``Solution`` whose ``history`` has ⌈max_iter / every⌉ entries.
    ``tol=0`` and ``kkt_tol=0`` switch those stopping rules off.
    """
    if not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise ValueError(f"max_iter must be an integer ≥ 1, got {max_iter!r}")
    if not isinstance(every, (int, np.integer)) or every < 1:
        raise ValueError(f"every must be an integer ≥ 1, got {every!r}")
    max_iter, every = int(max_iter), int(every)
    problem = problem.with_transpose_cache()
    dtype = problem.dtype
    tol = jnp.asarray(tol, dtype)
    kkt_tol = jnp.asarray(kkt_tol, dtype)
    factors = Factors(jnp.asarray(factors[0], dtype), jnp.asarray(factors[1], dtype))
    n_rec = math.ceil(max_iter / every)

    ev0 = evaluate(problem, factors)
    kkt0 = jnp.sqrt(ev0.kkt_sq)
    pg0 = jnp.sqrt(ev0.pg_sq)
    kkt_scale = jnp.where(kkt0 > 0, kkt0, 1.0)
    pg_scale = jnp.where(pg0 > 0, pg0, 1.0)

    state = solver.init(problem, factors)
    dyn_state, static_state = eqx.partition(state, eqx.is_array)
    nan_buf = jnp.full((n_rec,), jnp.nan, dtype)

    def run_chunk(t, factors, dyn_state):
        def one(i, carry):
            f, s = carry
            new_f, new_s = solver.step(problem, f, eqx.combine(s, static_state))
            new_s, _ = eqx.partition(new_s, eqx.is_array)
            if every == 1:
                return new_f, new_s
            return _select(t + i < max_iter, (new_f, new_s), (f, s))

        if every == 1:
            return one(0, (factors, dyn_state))
        return jax.lax.fori_loop(0, every, one, (factors, dyn_state))

    def cond(carry):
        return carry[4] == Status.RUNNING

    def body(carry):
        t, k, factors, dyn_state, status, f_prev, hist = carry
        new_factors, new_state = run_chunk(t, factors, dyn_state)
        t_new = jnp.minimum(t + every, max_iter)
        finite = _all_finite(new_factors)
        ev = evaluate(problem, new_factors)
        finite = finite & jnp.isfinite(ev.objective)
        diff = Factors(new_factors.W - factors.W, new_factors.H - factors.H)
        rel_change = jnp.sqrt(_sq(diff) / jnp.maximum(_sq(factors), jnp.finfo(dtype).tiny))
        kkt = jnp.sqrt(ev.kkt_sq) / kkt_scale
        decrease = jnp.abs(f_prev - ev.objective) / jnp.maximum(
            jnp.abs(f_prev), jnp.finfo(dtype).tiny
        )
        converged = (decrease < tol) | (kkt < kkt_tol)
        new_status = jnp.where(
            ~finite,
            Status.NONFINITE,
            jnp.where(
                converged, Status.CONVERGED, jnp.where(t_new >= max_iter, Status.MAX_ITER, status)
            ),
        ).astype(jnp.int32)
        obj_h, kkt_h, pg_h, rc_h = hist
        hist = (
            obj_h.at[k].set(jnp.where(finite, ev.objective, jnp.nan)),
            kkt_h.at[k].set(jnp.where(finite, kkt, jnp.nan)),
            pg_h.at[k].set(jnp.where(finite, jnp.sqrt(ev.pg_sq) / pg_scale, jnp.nan)),
            rc_h.at[k].set(jnp.where(finite, rel_change, jnp.nan)),
        )
        factors, dyn_state = _select(finite, (new_factors, new_state), (factors, dyn_state))
        t = jnp.where(finite, t_new, t)
        f_prev = jnp.where(finite, ev.objective, f_prev)
        return t, k + 1, factors, dyn_state, new_status, f_prev, hist

    carry = (
        jnp.asarray(0, jnp.int32),
        jnp.asarray(0, jnp.int32),
        factors,
        dyn_state,
        jnp.asarray(Status.RUNNING, jnp.int32),
        ev0.objective,
        (nan_buf, nan_buf, nan_buf, nan_buf),
    )
    t, _, factors, _, status, f_last, hist = jax.lax.while_loop(cond, body, carry)
    history = History(
        *hist, objective0=ev0.objective, kkt0=kkt0, pg0=pg0, every=every, max_iter=max_iter
    )
    return Solution(
        W=factors.W,
        H=factors.H,
        objective=f_last,
        n_iter=t,
        status=status,
        history=history,
    )
