"""The one loop: ``solve(problem, solver, factors, budget) -> Solution``.

Every iteration loop over solver steps in jnmf lives here: ``nmf``, restarts, rank sweeps,
cross-validation, ``nn.encode``, ``nn.factorize`` and the estimator's ``transform`` all call
``solve``.  One ``lax.while_loop`` runs the solver's ``step`` in chunks of ``budget.every``
steps; after each chunk it evaluates the objective and the stationarity measures
(``optimality.evaluate``), writes them at their index into fixed-size history buffers (NaN
beyond the stop) and tests the stopping rules:

* ``tol``: the relative decrease of the objective **per iteration**, averaged over the chunk,
  |f_prev − f| / (|f_prev| · steps) < tol — one meaning whatever the cadence;
* ``kkt_tol``: the relative KKT residual ‖min(X, ∇f)‖ / ‖min(X₀, ∇f(X₀))‖ < kkt_tol;
* ``max_iter`` iterations;
* a non-finite iterate or objective: the loop stops, returns the last finite (evaluated)
  factors and reports ``Status.NONFINITE`` (never a silent success);
* a stall: factors exactly unchanged for ``STALL_ITERATIONS`` iterations while the relative
  KKT residual exceeds √ε ends as ``Status.STALLED`` (a frozen solver is never reported as
  converged or as having merely run out of iterations).

Scale.  The loop solves the problem for V / s with s = 4^k the power of four nearest max V
(exact in floating point), factors divided by √s, penalties rescaled so that the minimizers
correspond (l1 · s^(1/2−β), l2 · s^(1−β)), and scales back: D_β(sV'‖sW'H') = s^β D_β(V'‖W'H').
So results do not depend on the scale of V where the scaled problem is representable, and
``check_scale`` refuses (before compiling) data whose objective is not representable.

How the loop is differentiated is its ``adjoint`` (``jnmf.adjoint``): None (not reverse-
differentiable), ``Unrolled`` (the same steps as a checkpointed scan) or ``Implicit`` (the KKT
conditions at the solution).  ``throw=True`` raises (``equinox.error_if``, also under jit and
vmap) when the solve ends non-finite.
"""

from __future__ import annotations

import math
import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from jnmf.adjoint import Implicit, Unrolled, kkt_adjoint
from jnmf.optimality import evaluate, gradient_parts_H, gradient_parts_W, penalty_gradient
from jnmf.problem import Factors, Problem, objective
from jnmf.solvers.base import AbstractSolver

# A solve whose factors stay exactly unchanged for this many iterations (checked at each
# evaluation) while its relative KKT residual exceeds √ε ends as STALLED, not MAX_ITER or
# CONVERGED (solvers with adaptive state, e.g. projected gradient's inner tolerance, may
# skip a few moves legitimately).
STALL_ITERATIONS = 10
DEFAULT_EVERY = (
    50  # evaluation every 50 steps: ≤ ~4 % of a solve when an evaluation costs ≤ 1.6 steps
)


class Status(eqx.Enumeration):
    """Why a solve stopped (``Status[sol.status]`` is the message)."""

    CONVERGED = (
        "converged: the relative objective decrease per iteration fell below tol, "
        "or the relative KKT residual below kkt_tol"
    )
    MAX_ITER = "stopped at max_iter before the stopping rules were met"
    NONFINITE = (
        "stopped: a non-finite iterate or objective appeared; the last finite factors are "
        "returned (check the data scale, the penalties and the solver's step sizes)"
    )
    STALLED = (
        "stopped: the factors did not change for 10 or more iterations while the KKT "
        "residual stayed above √ε of its start: the solver is stuck away from a stationary "
        "point (a NaN gradient, or multiplicative updates locking zeros: try another solver, "
        "or MU with floor > 0)"
    )
    RUNNING = "running"


def _iterations(name):
    def convert(value):
        from jnmf.checks import check_positive_int

        return check_positive_int(name, value)

    return convert


def _tolerance(name):
    def convert(value):
        """A validated tolerance as an array (so it is traced under jit, never static)."""
        from jnmf.checks import check_nonneg_scalar

        value = check_nonneg_scalar(name, value)
        return value if isinstance(value, jax.Array) else np.asarray(float(value))

    return convert


class Budget(eqx.Module):
    """The stopping budget: ``max_iter`` and ``every`` (static), ``tol`` and ``kkt_tol`` (traced).

    ``every`` is the evaluation cadence: the objective, KKT residual and stopping rules are
    evaluated after every ``every`` steps (and at the last); the history has
    ⌈max_iter / every⌉ entries.  ``tol = 0`` and ``kkt_tol = 0`` switch those rules off.
    """

    max_iter: int = eqx.field(default=200, static=True, converter=_iterations("max_iter"))
    tol: Array = eqx.field(default=1e-4, converter=_tolerance("tol"))
    kkt_tol: Array = eqx.field(default=0.0, converter=_tolerance("kkt_tol"))
    every: int = eqx.field(default=DEFAULT_EVERY, static=True, converter=_iterations("every"))

    @property
    def n_records(self) -> int:
        return math.ceil(self.max_iter / min(self.every, self.max_iter))


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
    """The result of ``solve``: factors, final objective, status and history.

    Batched computations (restarts, sweeps, folds) return a ``Solution`` whose leaves have
    leading batch axes (``jnmf.nmf(..., return_restarts=True)``; ``jnmf.best_of`` picks one).
    """

    W: Array
    H: Array
    objective: Array
    n_iter: Array
    status: Status
    history: History

    @property
    def factors(self) -> Factors:
        return Factors(self.W, self.H)

    @property
    def converged(self) -> Array:
        return self.status == Status.CONVERGED

    @property
    def status_code(self) -> np.ndarray:
        """The status as integers (index into ``Status``: 0 converged, 1 max_iter, 2 non-finite,
        3 stalled)."""
        return np.asarray(self.status._value)

    @property
    def message(self) -> str | list:
        """The status message (a nested list of messages for a batched solution)."""
        codes = self.status_code
        names = list(Status._name_to_item)
        texts = [Status[Status._name_to_item[n]] for n in names]
        if codes.ndim == 0:
            return texts[int(codes)]
        return np.vectorize(lambda c: texts[int(c)], otypes=[object])(codes).tolist()


def _all_finite(factors: Factors) -> Array:
    return jnp.all(jnp.isfinite(factors.W)) & jnp.all(jnp.isfinite(factors.H))


def _sq(factors: Factors) -> Array:
    return jnp.sum(factors.W**2) + jnp.sum(factors.H**2)


def _select(pred, a, b):
    return jax.tree_util.tree_map(lambda x, y: jnp.where(pred, x, y), a, b)


# ----------------------------------------------------------------------------------- scale


def data_scale(problem: Problem) -> Array:
    """s = 4^round(log₄ max V) (1 for V = 0): dividing by it is exact in floating point."""
    top = problem.data_max()
    k = jnp.round(jnp.log2(jnp.where(top > 0, top, 1.0)) / 2)
    return jnp.exp2(2 * k).astype(problem.dtype)


def scale_problem(problem: Problem, s: Array) -> Problem:
    """The problem for V / s with penalties rescaled so that (W, H) ↦ (W/√s, H/√s) maps
    minimizers to minimizers (module docstring)."""
    beta = jnp.asarray(problem.beta, problem.dtype)
    l1 = s ** (0.5 - beta)
    l2 = s ** (1.0 - beta)
    return problem.replace(
        V=problem.V / s,
        V_T=None if problem.V_T is None else problem.V_T / s,
        V_sq=None if problem.V_sq is None else problem.V_sq / (s * s),
        l1_W=problem.l1_W * l1,
        l1_H=problem.l1_H * l1,
        l2_W=problem.l2_W * l2,
        l2_H=problem.l2_H * l2,
    )


def check_scale(problem: Problem) -> None:
    """Refuse (before compiling) data whose objective cannot be represented in its dtype.

    The objective scales as s^β with s = max V; when s^β·(n·m) overflows, or s^β underflows,
    the solve cannot report it.  Traced data are not checked.
    """
    beta = problem.beta
    if not problem.is_concrete or not isinstance(beta, float):
        return
    if problem.is_sparse or not getattr(problem.V, "is_fully_addressable", True):
        top = float(problem.data_max())  # on the devices: no process holds all of V
    else:  # on the host: no program to compile for a new shape
        top = float(np.max(np.asarray(problem.data(), dtype=np.float64)))
    if top <= 0:
        return
    info = np.finfo(np.dtype(problem.dtype))
    log_f = beta * math.log(top)
    size = problem.shape[0] * problem.shape[1]
    if log_f + math.log(size) > math.log(float(info.max)) - math.log(16.0):
        why = "overflows"
    elif log_f < math.log(float(info.tiny)) + math.log(1e3):
        why = "underflows"
    else:
        return
    raise ValueError(
        f"V's largest entry is {top:.3g}: at β = {beta:g} the objective scales as "
        f"max(V)^β ≈ 1e{log_f / math.log(10):.0f}, which {why} {problem.dtype}. Rescale V (e.g. "
        "V / V.max(); the factors scale back by the square root of that factor) or use float64"
    )


# ------------------------------------------------------------------------------ the loop


def _initial_state(solver, problem, factors):
    state = solver.init(problem, factors)
    return eqx.partition(state, eqx.is_array)


def _while_loop(problem, solver, factors, budget: Budget):
    """The stopping loop on an already scaled problem: (factors, f, n_iter, status, history).

    Each pass of the body evaluates the current iterate (the start on the first pass: its
    measures are the scales of the relative KKT and projected-gradient norms), records it and
    tests the stopping rules, then runs the next chunk of steps (none once stopped).  So the
    evaluation appears once in the compiled program: a new shape compiles about one
    evaluation less than with a separate evaluation of the start.
    """
    max_iter = budget.max_iter
    every = min(budget.every, max_iter)
    dtype = problem.dtype
    tol = jnp.asarray(budget.tol, dtype)
    kkt_tol = jnp.asarray(budget.kkt_tol, dtype)
    n_rec = budget.n_records
    tiny = jnp.finfo(dtype).tiny
    nan = jnp.asarray(jnp.nan, dtype)
    running = Status.RUNNING._value

    dyn_state, static_state = _initial_state(solver, problem, factors)

    def one(_, carry):
        f, s = carry
        new_f, new_s = solver.step(problem, f, eqx.combine(s, static_state))
        return new_f, eqx.partition(new_s, eqx.is_array)[0]

    def cond(carry):
        return carry["status"] == running

    def body(c):
        c = dict(c)
        factors, prev = c["factors"], c["prev"]
        ev = evaluate(problem, factors)
        first = c["k"] == 0
        kkt_norm, pg_norm = jnp.sqrt(ev.kkt_sq), jnp.sqrt(ev.pg_sq)
        start = jnp.stack([ev.objective, kkt_norm, pg_norm])
        c["start"] = jnp.where(first, start, c["start"])
        kkt0, pg0 = c["start"][1], c["start"][2]
        kkt = kkt_norm / jnp.where(kkt0 > 0, kkt0, 1.0)
        pg = pg_norm / jnp.where(pg0 > 0, pg0, 1.0)
        steps = c["steps"]
        t = c["t"]
        finite = first | (_all_finite(factors) & jnp.isfinite(ev.objective))
        diff = Factors(factors.W - prev.W, factors.H - prev.H)
        rel_change = jnp.sqrt(_sq(diff) / jnp.maximum(_sq(prev), tiny))
        f_prev = c["f_prev"]
        decrease = jnp.abs(f_prev - ev.objective) / (
            jnp.maximum(jnp.abs(f_prev), tiny) * jnp.maximum(steps, 1).astype(dtype)
        )
        far = kkt > jnp.sqrt(jnp.finfo(dtype).eps)  # from a stationary point
        frozen = rel_change == 0
        # an unchanged iterate far from stationarity is not convergence: it is a stall
        converged = ((decrease < tol) & ~(frozen & far)) | (kkt < kkt_tol)
        still = jnp.where(frozen, c["still"] + steps, 0)
        stalled = (still >= STALL_ITERATIONS) & far
        status = jnp.where(
            ~finite,
            Status.NONFINITE._value,
            jnp.where(
                stalled,
                Status.STALLED._value,
                jnp.where(
                    converged,
                    Status.CONVERGED._value,
                    jnp.where(t >= max_iter, Status.MAX_ITER._value, running),
                ),
            ),
        )
        status = jnp.where(first, running, status).astype(c["status"].dtype)
        row = jnp.where(finite, jnp.stack([ev.objective, kkt, pg, rel_change]), nan)
        k_rec = jnp.where(first, n_rec, c["k"] - 1)  # out of bounds: the start is not recorded
        c["hist"] = c["hist"].at[:, k_rec].set(row, mode="drop")
        # a non-finite iterate is dropped: the last evaluated (finite) one is returned
        factors, dyn_state = _select(finite, (factors, c["state"]), (prev, c["prev_state"]))
        t = jnp.where(finite, t, t - steps)
        c["f_prev"] = jnp.where(finite, ev.objective, f_prev)
        c["still"] = still
        c["status"] = status
        c["k"] = c["k"] + 1
        # the next chunk (no step once stopped)
        todo = jnp.where(status == running, jnp.minimum(every, max_iter - t), 0)
        new = jax.lax.fori_loop(0, todo, one, (factors, dyn_state))
        c["prev"], c["prev_state"] = factors, dyn_state
        c["factors"], c["state"] = new
        c["t"], c["steps"] = t + todo, todo
        return c

    zero = jnp.asarray(0, jnp.int32)
    carry = {
        "t": zero,
        "k": zero,
        "steps": zero,
        "still": zero,
        "factors": factors,
        "prev": factors,
        "state": dyn_state,
        "prev_state": dyn_state,
        "status": running,
        "f_prev": nan,
        "start": jnp.full((3,), nan, dtype),
        "hist": jnp.full((4, n_rec), nan, dtype),
    }
    c = jax.lax.while_loop(cond, body, carry)
    obj0, kkt0, pg0 = c["start"][0], c["start"][1], c["start"][2]
    history = History(*c["hist"], obj0, kkt0, pg0, every=every, max_iter=max_iter)
    return c["prev"], c["f_prev"], c["t"] - c["steps"], c["status"], history


def _unrolled_loop(problem, solver, factors, budget: Budget, mode: Unrolled):
    """Exactly ``max_iter`` steps as a (checkpointed) scan; history at chunk boundaries."""
    max_iter = budget.max_iter
    k = mode.chunk_size(max_iter) if mode.checkpoint else min(budget.every, max_iter)
    q, rem = divmod(max_iter, k)
    dyn_state, static_state = _initial_state(solver, problem, factors)
    ev0 = evaluate(problem, jax.lax.stop_gradient(factors))
    kkt0, pg0 = jnp.sqrt(ev0.kkt_sq), jnp.sqrt(ev0.pg_sq)

    def steps(carry, length):
        def one(c, _):
            f, s = c
            new_f, new_s = solver.step(problem, f, eqx.combine(s, static_state))
            return (new_f, eqx.partition(new_s, eqx.is_array)[0]), None

        return jax.lax.scan(one, carry, None, length=length)[0]

    def record(carry):
        ev = evaluate(problem, jax.lax.stop_gradient(carry[0]))
        kkt = jnp.sqrt(ev.kkt_sq) / jnp.where(kkt0 > 0, kkt0, 1.0)
        pg = jnp.sqrt(ev.pg_sq) / jnp.where(pg0 > 0, pg0, 1.0)
        return ev.objective, kkt, pg

    run = (lambda c: steps(c, k)) if not mode.checkpoint else jax.checkpoint(lambda c: steps(c, k))

    def body(carry, _):
        carry = run(carry)
        return carry, record(carry)

    carry, recs = jax.lax.scan(body, (factors, dyn_state), None, length=q)
    if rem:
        tail = (
            (lambda c: steps(c, rem))
            if not mode.checkpoint
            else jax.checkpoint(lambda c: steps(c, rem))
        )
        carry = tail(carry)
        recs = jax.tree_util.tree_map(
            lambda a, b: jnp.concatenate([a, b[None]]), recs, record(carry)
        )
    factors = carry[0]
    obj, kkt, pg = recs
    finite = _all_finite(factors) & jnp.isfinite(obj[-1])
    status = jnp.where(finite, Status.MAX_ITER._value, Status.NONFINITE._value)
    history = History(
        obj,
        kkt,
        pg,
        jnp.full_like(obj, jnp.nan),
        ev0.objective,
        kkt0,
        pg0,
        every=k,
        max_iter=max_iter,
    )
    f_last = objective(problem, factors)  # differentiable: the objective of the iterate
    return factors, f_last, jnp.asarray(max_iter, jnp.int32), status.astype(jnp.int32), history


def _scaled_solve(problem, solver, factors, budget, adjoint):
    """Scale V to about 1, run the loop, scale back (module docstring)."""
    s = data_scale(problem) if solver.scale_equivariant else jnp.ones((), problem.dtype)
    root = jnp.sqrt(s)
    scaled = scale_problem(problem, s).with_caches()
    start = Factors(factors.W / root, factors.H / root)
    if isinstance(adjoint, Unrolled):
        out = _unrolled_loop(scaled, solver, start, budget, adjoint)
    else:
        out = _while_loop(scaled, solver, start, budget)
    (W, H), f, n_iter, code, history = out
    gain = s ** jnp.asarray(problem.beta, problem.dtype)
    history = eqx.tree_at(
        lambda h: (h.objective, h.objective0),
        history,
        (history.objective * gain, history.objective0 * gain),
    )
    return Solution(
        W=W * root,
        H=H * root,
        objective=f * gain,
        n_iter=n_iter,
        status=_status(code),
        history=history,
    )


def _status(code: Array) -> Status:
    """The ``Status`` item of an integer code (traced or batched)."""
    item = Status.RUNNING
    return eqx.tree_at(lambda x: x._value, item, jnp.asarray(code, jnp.asarray(item._value).dtype))


# ---------------------------------------------------------------------- implicit adjoint


def _free_gradients(problem: Problem, factors: Factors, free) -> tuple:
    """∇ of the free factors from the gradient parts P − N (the form whose derivatives stay
    finite where WH = 0 with V = 0)."""
    W, H = factors
    out = []
    if free[0]:
        P, N = gradient_parts_W(problem, W, H)
        out.append(P - N + penalty_gradient(problem.l1_W, problem.l2_W, W))
    if free[1]:
        P, N = gradient_parts_H(problem, W, H)
        out.append(P - N + penalty_gradient(problem.l1_H, problem.l2_H, H))
    return tuple(out)


@eqx.filter_custom_vjp
def _implicit_solve(theta, solver, budget, adjoint):
    problem, factors = theta
    return _scaled_solve(problem, solver, factors, budget, None)


@_implicit_solve.def_fwd
def _implicit_fwd(perturbed, theta, solver, budget, adjoint):
    problem, factors = theta
    sol = _scaled_solve(problem, solver, factors, budget, None)
    return sol, sol


@_implicit_solve.def_bwd
def _implicit_bwd(sol, grad_obj, perturbed, theta, solver, budget, adjoint):
    problem, start = theta
    jax.debug.callback(_warn_unconverged, sol.status._value)
    free = solver.free
    solution = Factors(sol.W, sol.H)
    x = tuple(xi for xi, f in zip(solution, free, strict=True) if f)

    def point(x_, fixed):
        it = iter(x_)
        return Factors(*(next(it) if f else c for f, c in zip(free, fixed, strict=True)))

    def grad_fn(x_, th):
        prob, fixed = th
        return _free_gradients(prob, point(x_, fixed), free)

    zeros = jax.tree_util.tree_map(jnp.zeros_like, solution)
    W_bar = zeros.W if grad_obj.W is None else grad_obj.W
    H_bar = zeros.H if grad_obj.H is None else grad_obj.H
    x_bar = tuple(b for b, f in zip((W_bar, H_bar), free, strict=True) if f)
    fixed = solution  # the fixed factor equals its start; the free ones are not read
    theta_x = (problem, fixed)
    theta_bar = kkt_adjoint(
        grad_fn, x, theta_x, x_bar, cg_tol=adjoint.cg_tol, cg_maxiter=adjoint.cg_maxiter
    )
    # the fixed factors' own cotangents (they are outputs too) and the objective's (envelope)
    f_bar = grad_obj.objective
    if f_bar is not None:
        dyn, static = eqx.partition(theta_x, eqx.is_array)
        _, vjp_f = jax.vjp(lambda d: objective(*eqx.combine(d, static)), dyn)
        (env,) = vjp_f(f_bar)
        used = f_bar != 0  # an unused objective must not turn a 0·∞ into NaN
        env = jax.tree_util.tree_map(lambda e: jnp.where(used, e, 0.0), env)
        theta_bar = jax.tree_util.tree_map(_add, theta_bar, env, is_leaf=lambda v: v is None)
    prob_bar, fixed_bar = theta_bar
    passthrough = (W_bar, H_bar)
    start_bar = Factors(
        *(
            None if f else _add(fb, pb)
            for f, fb, pb in zip(free, fixed_bar, passthrough, strict=True)
        )
    )
    return prob_bar, start_bar


def _warn_unconverged(code) -> None:
    if np.any(np.asarray(code) != int(Status.CONVERGED._value)):
        warnings.warn(
            "implicit gradient through a solve that did not converge (status max_iter or "
            "non-finite): the KKT conditions it differentiates do not hold; raise max_iter or "
            "use adjoint=Unrolled()",
            RuntimeWarning,
            stacklevel=2,
        )


def _add(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return a + b


# ----------------------------------------------------------------------------- entry point


def solve(
    problem: Problem,
    solver: AbstractSolver,
    factors,
    budget: Budget | None = None,
    *,
    adjoint: Unrolled | Implicit | None = None,
    throw: bool = False,
    max_iter: int | None = None,
    tol=None,
    kkt_tol=None,
    every: int | None = None,
) -> Solution:
    """Run ``solver`` from ``factors`` on ``problem``; pure, jit- and vmap-friendly.

    ``budget`` (a ``Budget``) or, as a shorthand, the keywords ``max_iter``, ``tol``,
    ``kkt_tol``, ``every`` (not both).  ``adjoint`` chooses how the solve is differentiated
    (module docstring); ``throw=True`` raises when the solve ends non-finite.

    Raises ``ValueError`` (before compiling) when the solver cannot handle the problem, the
    starting factors are negative, non-finite, all zero or of the wrong shape, or the data's
    scale makes the objective unrepresentable.
    """
    shorthand = {"max_iter": max_iter, "tol": tol, "kkt_tol": kkt_tol, "every": every}
    given = {k: v for k, v in shorthand.items() if v is not None}
    if budget is None:
        budget = Budget(**given)
    elif given:
        raise ValueError(f"give either budget= or the keywords {sorted(given)}, not both")
    if adjoint is not None and not isinstance(adjoint, (Unrolled, Implicit)):
        raise ValueError(f"adjoint must be None, Unrolled() or Implicit(), got {adjoint!r}")
    solver.check(problem)
    factors = _check_start(problem, factors)
    check_scale(problem)
    if isinstance(adjoint, Implicit):
        sol = _implicit_solve((problem.without_caches(), factors), solver, budget, adjoint)
    else:
        sol = _scaled_solve(problem, solver, factors, budget, adjoint)
    if throw:
        bad = sol.status == Status.NONFINITE
        sol = eqx.tree_at(lambda s: s.W, sol, eqx.error_if(sol.W, bad, Status[Status.NONFINITE]))
    return sol


def _check_start(problem: Problem, factors) -> Factors:
    """Starting factors in V's dtype; shapes, signs and finiteness checked when concrete."""
    from jnmf.checks import check_factors

    if not (isinstance(factors, tuple) and len(factors) == 2):
        raise ValueError("factors must be a pair (W, H)")
    W, H = check_factors(factors[0], factors[1], problem.shape, dtype=problem.dtype)
    return Factors(W, H)


__all__ = ["Budget", "History", "Solution", "Status", "solve"]
