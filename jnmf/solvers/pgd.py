"""Projected gradient: Lin's alternating method with Armijo search, and an optax-driven variant.

``ProjectedGradient`` (Lin 2007, "Projected gradient methods for non-negative matrix
factorization") alternates between the two blocks; on each it takes projected gradient steps

    X ← P₊(X − α ∇_X f),   P₊(Z) = max(Z, 0),

until Lin's projected gradient norm ‖∇^P_X f‖ falls below the block tolerance (or
``max_inner`` steps).  The step α comes from Lin's improved search: start from the last
accepted α; if it satisfies the sufficient decrease condition

    f(X_new) − f(X) ≤ σ ⟨∇_X f, X_new − X⟩                          (σ = 0.01)

grow it by 1/``shrink`` while it still does (and moves the point), else shrink it by
``shrink`` (= 0.1) until it does (at most ``max_search`` trials).  For Frobenius without
weights f is quadratic in each block and the difference is evaluated exactly as
⟨G, D⟩ + ½⟨D, (WᵀW + l2) D⟩; otherwise it is the difference of objective values, and a trial
at which f is not finite, or (β ≤ 1) where (WH)_ij = 0 for some observed V_ij > 0, fails.  Every
accepted step decreases f, so the objective never increases.  Block tolerances follow Lin:
``inner_tol`` × ‖∇f(W₀, H₀)‖ at the start, divided by 10 whenever a block is already solved
before its first step.  The step sizes start at ‖X‖/‖∇_X f‖ (Lin starts at 1, which is not
scale invariant) and are carried from one iteration to the next.

``OptaxProjectedGradient`` applies any ``optax.GradientTransformation`` to (∇_W f, ∇_H f),
jointly or block by block, and projects onto X ≥ ``floor`` (0 by default: optax's
``projection_non_negative``).  There is no line search, so the objective may go up.

Both take every gradient from ``jnmf.optimality`` and so handle every β, the penalties and
entry weights.
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jax import Array

from jnmf.optimality import gradient_parts_H, gradients, penalty_gradient, projected_gradient
from jnmf.problem import Factors, Problem, model_covers_data, objective
from jnmf.solvers.base import AbstractAlternatingSolver, AbstractSolver


def _vdot(a: Array, b: Array) -> Array:
    return jnp.sum(a * b)


def _norm(x: Array) -> Array:
    return jnp.sqrt(jnp.sum(x * x))


class _Block(NamedTuple):
    """The H-subproblem min_{H ≥ 0} f(W, H) with W fixed (W-block: the transposed problem)."""

    problem: Problem
    W: Array

    def gradient(self, H: Array) -> Array:
        P, N = gradient_parts_H(self.problem, self.W, H)
        return P - N + penalty_gradient(self.problem.l1_H, self.problem.l2_H, H)

    def curvature(self, D: Array) -> Array:
        """(WᵀW + l2_H) D: the Hessian of the (unweighted Frobenius) block applied to D."""
        P, _ = gradient_parts_H(self.problem, self.W, D)
        return P + self.problem.l2_H * D

    def value(self, H: Array) -> Array:
        """f(W, H), or +inf where β ≤ 1 and (WH)_ij = 0 for some observed V_ij > 0."""
        problem = self.problem
        f = objective(problem, Factors(self.W, H))
        finite = model_covers_data(problem, self.W, H)
        beta = problem.beta
        if isinstance(beta, float):
            return f if beta > 1 else jnp.where(finite, f, jnp.inf)
        return jnp.where(finite | (beta > 1), f, jnp.inf)


def _search(block: _Block, H, G, f_H, alpha, sigma, shrink, max_search, quadratic):
    """Lin's step search from ``alpha``: (H_new, G_new, f_new, alpha_new, moved)."""
    gd_scale = 1.0 - sigma

    def trial(alpha):
        Hn = jnp.maximum(H - alpha * G, 0.0)
        D = Hn - H
        gd = _vdot(G, D)
        if quadratic:
            QD = block.curvature(D)
            ok = gd_scale * gd + 0.5 * _vdot(D, QD) <= 0.0
            return Hn, QD, f_H, ok
        f_new = block.value(Hn)
        ok = jnp.isfinite(f_new) & (f_new - f_H <= sigma * gd)
        return Hn, G, f_new, ok

    def cond(c):
        j, done = c[0], c[-1]
        return (j < max_search) & ~done

    def body(c):
        j, a, a_acc, H_acc, aux_acc, f_acc, moved, growing, done = c
        Hn, aux, f_new, ok = trial(a)
        growing = jnp.where(j == 0, ok, growing)
        take = jnp.where(growing, ok & jnp.any(Hn != H_acc), ok)
        H_acc = jnp.where(take, Hn, H_acc)
        aux_acc = jnp.where(take, aux, aux_acc)
        f_acc = jnp.where(take, f_new, f_acc)
        a_acc = jnp.where(take, a, a_acc)
        moved = moved | take
        done = jnp.where(growing, ~take, ok)
        a = jnp.where(growing, a / shrink, a * shrink)
        a = jnp.where(take | ~growing, a, a_acc)
        return j + 1, a, a_acc, H_acc, aux_acc, f_acc, moved, growing, done

    zero_aux = jnp.zeros_like(G)
    no = jnp.asarray(False)
    init = (jnp.asarray(0, jnp.int32), alpha, alpha, H, zero_aux, f_H, no, no, no)
    _, a, a_acc, H_new, aux, f_new, moved, _, _ = jax.lax.while_loop(cond, body, init)
    alpha_new = jnp.where(moved, a_acc, a)
    if quadratic:
        G_new = G + aux  # the gradient is affine in H: ∇(H + D) = ∇(H) + (WᵀW + l2) D
    else:
        G_new = jax.lax.cond(moved, block.gradient, lambda _: G, H_new)
    return H_new, G_new, f_new, alpha_new, moved


def _solve_block(problem, W, H, alpha, tol, solver: ProjectedGradient):
    """Projected gradient on the H-block until ‖∇^P_H f‖ ≤ tol: (H, alpha, steps taken)."""
    block = _Block(problem, W)
    quadratic = problem.is_quadratic
    G = block.gradient(H)
    f_H = jnp.zeros((), H.dtype) if quadratic else block.value(H)

    def cond(c):
        i, H, G, _, _, stop = c
        return (i < solver.max_inner) & ~stop & (_norm(projected_gradient(H, G)) > tol)

    def body(c):
        i, H, G, f_H, alpha, _ = c
        H, G, f_H, alpha, moved = _search(
            block, H, G, f_H, alpha, solver.sigma, solver.shrink, solver.max_search, quadratic
        )
        return i + moved.astype(i.dtype), H, G, f_H, alpha, ~moved

    init = (jnp.asarray(0, jnp.int32), H, G, f_H, alpha, jnp.asarray(False))
    steps, H, _, _, alpha, _ = jax.lax.while_loop(cond, body, init)
    return H, alpha, steps


class _BlockState(eqx.Module):
    alpha: Array
    tol: Array


def _initial_step(X: Array, G: Array) -> Array:
    nx, ng = _norm(X), _norm(G)
    return jnp.where((nx > 0) & (ng > 0), nx / jnp.where(ng > 0, ng, 1.0), 1.0)


class ProjectedGradient(AbstractAlternatingSolver):
    """Lin's (2007) alternating projected gradient with Armijo search, for every β.

    One step solves the W-block, then the H-block, each to its current tolerance (see the
    module docstring).  ``max_inner`` caps the projected gradient steps per block and
    ``max_search`` the trials of each step search, so every loop is bounded.
    """

    sigma: float = 0.01
    shrink: float = 0.1
    inner_tol: float = 1e-3
    max_inner: int = eqx.field(default=20, static=True)
    max_search: int = eqx.field(default=20, static=True)

    def __check_init__(self):
        if isinstance(self.sigma, (int, float)) and not 0 < self.sigma < 1:
            raise ValueError(f"sigma must lie in (0, 1), got {self.sigma}")
        if isinstance(self.shrink, (int, float)) and not 0 < self.shrink < 1:
            raise ValueError(f"shrink must lie in (0, 1), got {self.shrink}")
        if self.max_inner < 1 or self.max_search < 1:
            raise ValueError("max_inner and max_search must be ≥ 1")

    def init(self, problem: Problem, factors: Factors):
        G = gradients(problem, factors)
        tol = self.inner_tol * jnp.sqrt(_norm(G.W) ** 2 + _norm(G.H) ** 2)
        return (
            _BlockState(_initial_step(factors.W, G.W), tol),
            _BlockState(_initial_step(factors.H, G.H), tol),
        )

    def update_block(self, problem: Problem, W: Array, H: Array, state: _BlockState, model):
        H, alpha, steps = _solve_block(problem, W, H, state.alpha, state.tol, self)
        tol = jnp.where(steps == 0, 0.1 * state.tol, state.tol)
        return H, _BlockState(alpha, tol), None


class _OptaxState(eqx.Module):
    opt_state: object


class OptaxProjectedGradient(AbstractSolver):
    """X ← max(X + u, floor) with u from any ``optax.GradientTransformation`` of ∇f.

    ``optimizer=None`` uses Adam with step ``learning_rate`` × √(mean(V)/r), the typical size
    of an entry of W or H when WH ≈ V, so the default does not depend on the scale of the
    data.  ``alternating=False`` updates (W, H) jointly from the gradient at the current point;
    ``alternating=True`` updates W, then H with the gradient at the new W, each block with
    its own optimizer state.  The optimizer state lives in the solver state.
    """

    optimizer: optax.GradientTransformation | None = eqx.field(default=None, static=True)
    learning_rate: float = 0.01
    alternating: bool = eqx.field(default=False, static=True)
    floor: float = 0.0

    padding_exact: ClassVar = False
    monotone: ClassVar = False

    def _transform(self, problem: Problem, rank: int) -> optax.GradientTransformation:
        if self.optimizer is not None:
            return self.optimizer
        scale = jnp.sqrt(problem.data_mean() / rank)
        return optax.adam(self.learning_rate * scale)

    def init(self, problem: Problem, factors: Factors) -> _OptaxState:
        opt = self._transform(problem, factors.W.shape[1])
        if self.alternating:
            return _OptaxState((opt.init(factors.W), opt.init(factors.H)))
        return _OptaxState(opt.init(factors))

    def _project(self, X: Array) -> Array:
        return jnp.maximum(X, jnp.asarray(self.floor, X.dtype))

    def step(self, problem: Problem, factors: Factors, state: _OptaxState):
        opt = self._transform(problem, factors.W.shape[1])
        if not self.alternating:
            grads = gradients(problem, factors)
            updates, opt_state = opt.update(grads, state.opt_state, factors)
            new = optax.apply_updates(factors, updates)
            return Factors(self._project(new.W), self._project(new.H)), _OptaxState(opt_state)
        state_W, state_H = state.opt_state
        W, H = factors
        gW = gradients(problem, Factors(W, H)).W
        uW, state_W = opt.update(gW, state_W, W)
        W = self._project(optax.apply_updates(W, uW))
        gH = gradients(problem, Factors(W, H)).H
        uH, state_H = opt.update(gH, state_H, H)
        H = self._project(optax.apply_updates(H, uH))
        return Factors(W, H), _OptaxState((state_W, state_H))
