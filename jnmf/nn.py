"""The differentiable NMF layer: non-negative encoding with unrolled or implicit gradients.

``encode(V, W)`` returns the non-negative code of each column of V on the dictionary W,

    H*(V, W, l1, l2, β) = argmin_{H ≥ 0}  D_β(V‖WH) + l1‖H‖₁ + ½ l2‖H‖_F²,

V (n,) or (n×m), W (n×r) ≥ 0, H* (r,) or (r×m).  Two ways to differentiate it:

* ``Unrolled()``: exactly ``max_iter`` solver steps in a ``lax.scan``; the gradient is the
  exact gradient of that truncated algorithm (initialization included).  With
  ``checkpoint=True`` the scan runs over chunks of k ≈ √max_iter steps, each chunk under
  ``jax.checkpoint``, so reverse mode stores O(√max_iter) iterates instead of O(max_iter).
* ``Implicit()``: the forward pass is the core's ``solve`` (a ``lax.while_loop``, never
  differentiated), and a ``custom_vjp`` differentiates the first-order conditions at the
  solution.  With S = {H_ij > (∇_H f)_ij} the support (at an exact KKT point S = {H > 0} and
  the rule ``H > ∇f`` is the one ``min(H, ∇f) = 0`` implies), H*_{S^c} = 0 and
  (∇_H f)_S(H*; θ) = 0, so by the implicit function theorem, for a cotangent Ḡ of H*,

      (∇²_HH f)_SS u = Ḡ_S,        θ̄ = −(∂_θ ∇_H f)ᵀ u        (u = 0 off S),

  solved matrix-free by conjugate gradients with Hessian-vector products from
  ``jax.linearize`` of ``optimality.gradient_parts_H``.  Memory does not depend on
  ``max_iter``.  The gradient is exact at a strict local minimum with strict complementarity
  (H_ij = 0 ⇒ (∇_H f)_ij > 0); it is the gradient of the solution, not of the iterates, so the
  forward solve should be converged.  The MU map is deliberately not used as the fixed-point
  equation: H = 0 is a fixed point of every multiplicative update.

``factorize`` differentiates a whole factorization (W*, H*) of V the same way, through the
joint KKT system on the supports of W and H.  ``NMFLayer`` is an equinox module holding a
learnable non-negative dictionary; ``holdout_loss`` and ``tune_l1`` show hyperparameter
gradients through the implicit mode.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.scipy.sparse.linalg import cg

from jnmf.api import nmf
from jnmf.divergence import BetaDivergence
from jnmf.optimality import gradient_parts_H, gradients, penalty_gradient
from jnmf.problem import Factors, Problem, as_float_array, make_problem
from jnmf.solve import solve
from jnmf.solvers import get_solver
from jnmf.solvers.base import AbstractSolver
from jnmf.solvers.mu import MultiplicativeUpdate

# ---------------------------------------------------------------------------------------------
# gradient modes


class Unrolled(eqx.Module):
    """Differentiate ``max_iter`` solver steps (no early stop) by reverse mode through a scan.

    ``checkpoint=True`` (default) splits the steps into chunks of ``chunk`` steps
    (⌈√max_iter⌉ when None), each rematerialized in the backward pass: memory O(√max_iter)
    iterates for about one extra forward pass.  ``checkpoint=False`` stores every step.
    """

    checkpoint: bool = eqx.field(default=True, static=True)
    chunk: int | None = eqx.field(default=None, static=True)


class Implicit(eqx.Module):
    """Differentiate the solution through its KKT conditions on the support (module docstring).

    ``cg_tol`` is the relative residual tolerance of conjugate gradients on the restricted
    Hessian system (None: ε^(2/3) of the dtype, 3.7e-11 in float64, 2.4e-5 in float32);
    ``cg_maxiter`` caps its iterations (None: JAX's default, 10 × the system size).
    """

    cg_tol: float | None = eqx.field(default=None, static=True)
    cg_maxiter: int | None = eqx.field(default=None, static=True)


# ---------------------------------------------------------------------------------------------
# solvers with W fixed


class ProjectedGradientH(AbstractSolver):
    """Projected gradient on H with W fixed, for β = 2: H ← max(0, H − ∇_H f / L).

    L = ‖WᵀW‖_F + l2_H bounds the Lipschitz constant ‖WᵀW‖₂ + l2_H of ∇_H f, so every step
    decreases f; the gradient comes from ``optimality.gradient_parts_H``.  L is computed once
    from W in ``init`` (it is the state), and is differentiable in W for the unrolled mode.
    """

    def check(self, problem: Problem) -> None:
        if not (problem.divergence.is_static and problem.beta == 2.0):
            raise ValueError(
                f"solver='pg' needs a fixed beta = 2 (its step uses the Lipschitz constant of "
                f"the Frobenius gradient), got beta={problem.beta}; use solver='mu' for any beta"
            )
        if problem.weights is not None:
            raise ValueError("solver='pg' does not support weights; use solver='mu'")

    def init(self, problem: Problem, factors: Factors) -> Array:
        W = factors.W
        L = jnp.sqrt(jnp.sum((W.T @ W) ** 2)) + problem.l2_H
        return jnp.maximum(L, jnp.finfo(W.dtype).tiny)

    def step(self, problem: Problem, factors: Factors, state: Array) -> tuple[Factors, Array]:
        W, H = factors
        P, N = gradient_parts_H(problem, W, H)
        G = P - N + penalty_gradient(problem.l1_H, problem.l2_H, H)
        return Factors(W, jnp.maximum(H - G / state, 0.0)), state


ENCODE_SOLVERS = ("mu", "pg")


def _encode_solver(solver) -> AbstractSolver:
    if isinstance(solver, AbstractSolver):
        if isinstance(solver, MultiplicativeUpdate) and solver.update_W:
            raise ValueError(
                "encode keeps W fixed: pass MultiplicativeUpdate(update_W=False) or solver='mu'"
            )
        return solver
    if solver == "mu":
        return MultiplicativeUpdate(update_W=False)
    if solver == "pg":
        return ProjectedGradientH()
    raise ValueError(
        f"unknown encode solver {solver!r}: use one of {ENCODE_SOLVERS} or a solver object "
        "that keeps W fixed"
    )


# ---------------------------------------------------------------------------------------------
# the implicit adjoint, shared by encode and factorize


def kkt_adjoint(
    grad_fn: Callable[[Any, Any], Any],
    x: Any,
    theta: Any,
    x_bar: Any,
    *,
    cg_tol: float | None,
    cg_maxiter: int | None,
) -> Any:
    """θ̄ = −(∂_θ g)ᵀ u with (∂_x g)_SS u = x̄_S, where g = ``grad_fn(x, θ)`` = ∇_x f.

    ``x`` is a pytree of non-negative arrays at a KKT point of min_{x ≥ 0} f(x; θ), S its
    support {x > g}.  The operator applied by CG is the restricted Hessian on S and the
    identity off S (so it is symmetric, and positive definite at a strict local minimum);
    the right-hand side and u vanish off S.
    """
    g, hvp = jax.linearize(lambda x_: grad_fn(x_, theta), x)
    mask = jax.tree_util.tree_map(lambda xi, gi: xi > gi, x, g)

    def restrict(t):
        return jax.tree_util.tree_map(lambda m, ti: jnp.where(m, ti, 0.0), mask, t)

    def operator(v):
        hv = hvp(restrict(v))
        return jax.tree_util.tree_map(lambda m, a, b: jnp.where(m, a, b), mask, hv, v)

    b = restrict(x_bar)
    if cg_tol is None:
        dtype = jax.tree_util.tree_leaves(x)[0].dtype
        cg_tol = float(jnp.finfo(dtype).eps) ** (2 / 3)
    u, _ = cg(operator, b, tol=cg_tol, atol=0.0, maxiter=cg_maxiter)
    u = restrict(u)
    _, vjp = jax.vjp(lambda th: grad_fn(x, th), theta)
    (theta_bar,) = vjp(jax.tree_util.tree_map(jnp.negative, u))
    return theta_bar


# ---------------------------------------------------------------------------------------------
# encode


class _Theta(NamedTuple):
    """The differentiable inputs of an encoding."""

    V: Array
    W: Array
    l1: Array
    l2: Array
    beta: Array | None  # None when β is a static Python float


class _EncodeSpec(eqx.Module):
    """Static configuration of an encoding (a non-differentiable custom_vjp argument)."""

    solver: AbstractSolver
    beta: float | None
    max_iter: int
    every: int
    gradient: Implicit | Unrolled


def _divergence(beta) -> BetaDivergence:
    """``BetaDivergence(beta)`` safe to build inside a trace.

    ``beta_from_name`` tests a Python β with ``jnp.isfinite``, which is staged (a tracer)
    under ``jit``/``checkpoint``; evaluating it at compile time keeps the test in Python.
    """
    with jax.ensure_compile_time_eval():
        return BetaDivergence(beta)


def _encode_problem(beta_static, theta: _Theta) -> Problem:
    """The W-fixed problem of ``theta``, built without Python value checks (traced-safe)."""
    zero = jnp.zeros((), theta.V.dtype)
    beta = beta_static if theta.beta is None else theta.beta
    return Problem(
        V=theta.V,
        divergence=_divergence(beta),
        l1_W=zero,
        l1_H=theta.l1,
        l2_W=zero,
        l2_H=theta.l2,
    )


def _grad_H(beta_static, H: Array, theta: _Theta) -> Array:
    """∇_H f = ∇_H D_β + l1 + l2 H, from ``optimality`` (r×m)."""
    problem = _encode_problem(beta_static, theta)
    P, N = gradient_parts_H(problem, theta.W, H)
    return P - N + penalty_gradient(theta.l1, theta.l2, H)


def _solve_H(spec: _EncodeSpec, theta: _Theta, H0: Array, tol: Array) -> Array:
    problem = _encode_problem(spec.beta, theta)
    sol = solve(
        problem,
        spec.solver,
        Factors(theta.W, H0),
        max_iter=spec.max_iter,
        tol=tol,
        kkt_tol=0.0,
        every=spec.every,
    )
    return sol.H


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _implicit_encode(spec: _EncodeSpec, theta: _Theta, H0: Array, tol: Array) -> Array:
    return _solve_H(spec, theta, H0, tol)


def _implicit_encode_fwd(spec, theta, H0, tol):
    H = _solve_H(spec, theta, H0, tol)
    return H, (theta, H, H0, tol)


def _implicit_encode_bwd(spec, res, H_bar):
    theta, H, H0, tol = res
    theta_bar = kkt_adjoint(
        lambda h, th: _grad_H(spec.beta, h, th),
        H,
        theta,
        H_bar,
        cg_tol=spec.gradient.cg_tol,
        cg_maxiter=spec.gradient.cg_maxiter,
    )
    return theta_bar, jnp.zeros_like(H0), jnp.zeros_like(tol)


_implicit_encode.defvjp(_implicit_encode_fwd, _implicit_encode_bwd)


def _unrolled_encode(
    solver: AbstractSolver, beta_static, theta: _Theta, H0: Array, n_steps: int, mode: Unrolled
) -> Array:
    def run(theta, carry, length):
        problem = _encode_problem(beta_static, theta)

        def step(c, _):
            H, dyn = c
            factors, state = solver.step(problem, Factors(theta.W, H), eqx.combine(dyn, static))
            dyn, _ = eqx.partition(state, eqx.is_array)
            return (factors.H, dyn), None

        return jax.lax.scan(step, carry, None, length=length)[0]

    problem = _encode_problem(beta_static, theta)
    dyn, static = eqx.partition(solver.init(problem, Factors(theta.W, H0)), eqx.is_array)
    carry = (H0, dyn)
    if not mode.checkpoint:
        return run(theta, carry, n_steps)[0]
    k = mode.chunk if mode.chunk is not None else math.isqrt(n_steps - 1) + 1
    k = max(1, min(int(k), n_steps))
    q, rem = divmod(n_steps, k)
    chunk = jax.checkpoint(lambda th, c: run(th, c, k))
    carry = jax.lax.scan(lambda c, _: (chunk(theta, c), None), carry, None, length=q)[0]
    if rem:
        carry = jax.checkpoint(lambda th, c: run(th, c, rem))(theta, carry)
    return carry[0]


def default_code_init(V: Array, W: Array) -> Array:
    """H₀ (r×m) with every entry of column j equal to c_j = ⟨W1, v_j⟩ / ‖W1‖² (clipped at 0).

    c_j is the least-squares scale of the constant code: argmin_c ‖v_j − c W1‖².
    """
    s = jnp.sum(W, axis=1)
    c = (s @ V) / jnp.maximum(s @ s, jnp.finfo(V.dtype).tiny)
    c = jnp.where(c > 0, c, 0.0)
    return jnp.broadcast_to(c, (W.shape[1], V.shape[1]))


def _check_W(W: Array, n: int) -> None:
    if W.ndim != 2:
        raise ValueError(f"W must be a 2-D dictionary (n×r), got shape {tuple(W.shape)}")
    if W.shape[0] != n:
        raise ValueError(
            f"W has {W.shape[0]} rows but V has {n} features: W must be n×r with n = V.shape[0] "
            "(samples are columns of V)"
        )
    if W.shape[1] == 0:
        raise ValueError("W has no columns (r = 0)")
    if isinstance(W, jax.core.Tracer):
        return
    vals = np.asarray(W)
    if not np.isfinite(vals).all():
        raise ValueError(f"W has {int((~np.isfinite(vals)).sum())} non-finite entries")
    if (vals < 0).any():
        raise ValueError(
            f"W has {int((vals < 0).sum())} negative entries (min {vals.min():.3g}); the "
            "dictionary must be non-negative (clip it, or use NMFLayer's parameterization)"
        )


def encode(
    V,
    W,
    *,
    beta=2.0,
    l1=0.0,
    l2=0.0,
    solver: str | AbstractSolver = "mu",
    max_iter: int = 500,
    tol=1e-7,
    init=None,
    gradient: Unrolled | Implicit | None = None,
    every: int = 10,
) -> Array:
    """H* = argmin_{H ≥ 0} D_β(V‖WH) + l1‖H‖₁ + ½ l2‖H‖_F², differentiable.

    Args:
        V: data, (n,) for one sample or (n×m) for m samples as columns; non-negative.
        W: dictionary (n×r), non-negative.
        beta: β (a Python number, a name, or a traced scalar to differentiate in β).
        l1, l2: penalty weights ≥ 0 on H (traced: changing them does not recompile).
        solver: "mu" (multiplicative updates with W fixed; any β), "pg" (projected gradient;
            β = 2) or a solver object that keeps W fixed.
        max_iter: solver steps (static).  ``Unrolled`` always runs exactly ``max_iter``.
        tol: relative objective decrease that stops the ``Implicit`` forward solve
            (checked every ``every`` steps, as in ``jnmf.solve``).
        init: initial H₀ of H*'s shape (default ``default_code_init``; MU needs H₀ > 0).
        gradient: ``Implicit()`` (default) or ``Unrolled()``.

    Returns:
        H*, (r,) or (r×m), in the dtype of V and W.

    Raises ``ValueError`` (before compiling) for shapes that do not match, negative or
    non-finite W or V, negative penalties, or a β the solver cannot handle.
    """
    gradient = Implicit() if gradient is None else gradient
    if not isinstance(gradient, (Unrolled, Implicit)):
        raise ValueError(f"gradient must be Unrolled(...) or Implicit(...), got {gradient!r}")
    V = as_float_array(V, "V")
    W = as_float_array(W, "W")
    if V.ndim not in (1, 2):
        raise ValueError(f"V must be (n,) or (n×m), got shape {tuple(V.shape)}")
    single = V.ndim == 1
    V2 = V[:, None] if single else V
    _check_W(W, V2.shape[0])
    dtype = jnp.result_type(V2.dtype, W.dtype)
    V2, W = V2.astype(dtype), W.astype(dtype)
    with jax.ensure_compile_time_eval():  # see _divergence
        problem = make_problem(V2, beta, l1_H=l1, l2_H=l2)
    for name in ("max_iter", "every"):
        val = max_iter if name == "max_iter" else every
        if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < 1:
            raise ValueError(f"{name} must be an integer ≥ 1, got {val!r}")
    solver_obj = _encode_solver(solver)
    solver_obj.check(problem)
    r, m = W.shape[1], V2.shape[1]
    H0 = None
    if init is not None:
        H0 = as_float_array(init, "init").astype(dtype)
        H0 = H0[:, None] if (single and H0.ndim == 1) else H0
        if H0.shape != (r, m):
            raise ValueError(f"init must have H*'s shape {(r,) if single else (r, m)}")
    beta_static = problem.beta if problem.divergence.is_static else None
    traced_beta = None if beta_static is not None else problem.beta
    theta = _Theta(V2, W, problem.l1_H, problem.l2_H, traced_beta)
    spec = _EncodeSpec(solver_obj, beta_static, int(max_iter), int(every), gradient)
    H = _encode_compiled(spec, theta, H0, jnp.asarray(tol, dtype))
    return H[:, 0] if single else H


@eqx.filter_jit
def _encode_compiled(spec: _EncodeSpec, theta: _Theta, H0: Array | None, tol: Array) -> Array:
    """The encoding proper, compiled once per configuration and shape (also when called
    outside ``jit``); inside a user's ``jit`` it is inlined."""
    if H0 is None:
        H0 = default_code_init(theta.V, theta.W)
    if isinstance(spec.gradient, Unrolled):
        return _unrolled_encode(spec.solver, spec.beta, theta, H0, spec.max_iter, spec.gradient)
    return _implicit_encode(spec, theta, H0, tol)


# ---------------------------------------------------------------------------------------------
# full factorization


class _FactorizeSpec(eqx.Module):
    beta: float | None
    rank: int
    solver: Any
    init: Any
    n_restarts: int
    max_iter: int
    tol: float
    key: Any
    implicit: Implicit


class _FactorTheta(NamedTuple):
    V: Array
    l1_W: Array
    l1_H: Array
    l2_W: Array
    l2_H: Array
    beta: Array | None


def _factor_problem(beta_static, th: _FactorTheta) -> Problem:
    beta = beta_static if th.beta is None else th.beta
    return Problem(th.V, _divergence(beta), th.l1_W, th.l1_H, th.l2_W, th.l2_H)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _implicit_factorize(spec: _FactorizeSpec, th: _FactorTheta, start) -> Factors:
    return _factorize_fwd(spec, th, start)[0]


def _factorize_fwd(spec, th, start):
    beta = spec.beta if th.beta is None else th.beta
    if start is None:
        with jax.ensure_compile_time_eval():  # see _divergence
            sol = _nmf(spec, th, beta)
    else:  # a given start may be traced: skip nmf's Python checks of it
        problem = _factor_problem(spec.beta, th)
        solver = get_solver(spec.solver)
        solver.check(problem)
        sol = solve(problem, solver, Factors(*start), max_iter=spec.max_iter, tol=spec.tol)
    out = Factors(sol.W, sol.H)
    return out, (th, out, start)


def _nmf(spec, th, beta):
    return nmf(
        th.V,
        spec.rank,
        beta=beta,
        solver=spec.solver,
        init=spec.init,
        n_restarts=spec.n_restarts,
        max_iter=spec.max_iter,
        tol=spec.tol,
        key=spec.key,
        l1_W=th.l1_W,
        l1_H=th.l1_H,
        l2_W=th.l2_W,
        l2_H=th.l2_H,
    )


def _factorize_bwd(spec, res, out_bar):
    th, out, start = res
    th_bar = kkt_adjoint(
        lambda x, t: gradients(_factor_problem(spec.beta, t), x),
        out,
        th,
        Factors(*out_bar),
        cg_tol=spec.implicit.cg_tol,
        cg_maxiter=spec.implicit.cg_maxiter,
    )
    return th_bar, jax.tree_util.tree_map(jnp.zeros_like, start)


_implicit_factorize.defvjp(_factorize_fwd, _factorize_bwd)


def factorize(
    V,
    rank: int,
    *,
    beta=2.0,
    l1_W=0.0,
    l1_H=0.0,
    l2_W=0.0,
    l2_H=0.0,
    solver="mu",
    init="nndsvda",
    n_restarts: int = 1,
    max_iter: int = 2000,
    tol: float = 1e-10,
    key: int = 0,
    implicit: Implicit | None = None,
) -> Factors:
    """(W*, H*) = ``jnmf.nmf(V, rank, ...)``, differentiable in V, the penalties (and β if traced).

    The backward pass applies the implicit function theorem to the joint first-order
    conditions ∇_W f = 0 on supp W*, ∇_H f = 0 on supp H* (``optimality.gradients``), with
    the zero entries held at zero, solving the restricted Hessian system by CG.

    Well-posedness: NMF is invariant under W D, D⁻¹ H (D positive diagonal), a direction in
    which the unpenalized Hessian is singular; a penalty on each factor
    (l1_W + l2_W > 0 and l1_H + l2_H > 0) fixes the scale, and is required here.  The gradient
    is still meaningless (CG fails or returns noise) when (W*, H*) is not a strict local
    minimum on its support: an unconverged solve, a degenerate solution (e.g. two equal
    columns of W, or exact low-rank data with a non-unique factorization and no penalty
    strong enough to select one), or entries with H_ij = 0 = ∇f_ij (no strict
    complementarity).  Columns may come out in any order (the order is not differentiable).
    """
    implicit = Implicit() if implicit is None else implicit
    with jax.ensure_compile_time_eval():  # see _divergence
        problem = make_problem(V, beta, l1_W=l1_W, l1_H=l1_H, l2_W=l2_W, l2_H=l2_H)
    for name, a, b in (("W", problem.l1_W, problem.l2_W), ("H", problem.l1_H, problem.l2_H)):
        if not isinstance(a + b, jax.core.Tracer) and not float(a + b) > 0:
            raise ValueError(
                f"factorize needs a penalty on {name} (l1_{name} or l2_{name} > 0): without one "
                "the scaling W D, D⁻¹H leaves the solution's derivative undefined"
            )
    beta_static = problem.beta if problem.divergence.is_static else None
    th = _FactorTheta(
        problem.V,
        problem.l1_W,
        problem.l1_H,
        problem.l2_W,
        problem.l2_H,
        None if beta_static is not None else problem.beta,
    )
    if isinstance(key, bool) or not isinstance(key, int):
        raise ValueError(f"factorize takes an integer seed as key, got {key!r}")
    start = None
    if not isinstance(init, str):
        if not (isinstance(init, tuple) and len(init) == 2):
            raise ValueError("init must be an initializer name or a tuple (W0, H0)")
        start = tuple(
            as_float_array(x, n).astype(problem.dtype) for x, n in zip(init, "WH", strict=True)
        )
        init = None
    spec = _FactorizeSpec(
        beta_static, rank, solver, init, n_restarts, max_iter, float(tol), key, implicit
    )
    return _implicit_factorize(spec, th, start)


# ---------------------------------------------------------------------------------------------
# the layer


def _inverse_softplus(x: Array) -> Array:
    """log(eˣ − 1), the inverse of softplus, for x > 0."""
    return x + jnp.log(-jnp.expm1(-x))


class NMFLayer(eqx.Module):
    """A learnable non-negative dictionary W (n×r) and the code h*(v) = encode(v, W).

    Called on one sample v (n,) it returns h* (r,), like ``equinox.nn`` layers; batch with
    ``jax.vmap(layer)(X)`` for X (batch×n).

    Non-negativity is kept by a parameterization, W = softplus(Θ) (then each column scaled to
    unit ℓ2 norm when ``normalize``), not by a projection: the layer then composes with any
    optax optimizer and any training loop unchanged (a projection must be added to every
    update, and a projected atom that reaches exactly 0 is a fixed point of multiplicative
    updates and gets no gradient through the codes).  The price is that W is never exactly
    sparse.  Normalizing the atoms removes the scale ambiguity W D, D⁻¹h, without which an L1
    penalty on h could be defeated by growing W (Mairal et al. 2012 constrain ‖w_k‖₂ ≤ 1).

    ``l1``, ``l2`` are ordinary fields (Python floats are treated as static by
    ``eqx.filter_jit``; pass arrays to trace or learn them); ``beta``, ``solver``,
    ``max_iter`` and ``gradient`` are static.
    """

    theta: Array
    l1: float | Array
    l2: float | Array
    tol: float | Array
    beta: float = eqx.field(static=True)
    solver: str = eqx.field(static=True)
    max_iter: int = eqx.field(static=True)
    gradient: Unrolled | Implicit = eqx.field(static=True)
    normalize: bool = eqx.field(static=True)

    def __init__(
        self,
        n_features: int,
        n_atoms: int,
        *,
        key: Array | None = None,
        W=None,
        beta: float = 2.0,
        l1=0.0,
        l2=0.0,
        solver: str = "mu",
        max_iter: int = 200,
        tol=1e-7,
        gradient: Unrolled | Implicit | None = None,
        normalize: bool = True,
        dtype=None,
    ):
        if W is None:
            if key is None:
                raise ValueError("NMFLayer needs a PRNG `key` (or an initial dictionary `W`)")
            dtype = jnp.result_type(float) if dtype is None else dtype
            W = jax.random.uniform(key, (n_features, n_atoms), dtype, 0.1, 1.0)
        else:
            W = as_float_array(W, "W")
            if W.shape != (n_features, n_atoms):
                raise ValueError(f"W must be {(n_features, n_atoms)}, got {tuple(W.shape)}")
            _check_W(W, n_features)
            W = W.astype(W.dtype if dtype is None else dtype)
        floor = 1e-6 * jnp.max(W) if W.size else 1.0
        self.theta = _inverse_softplus(jnp.maximum(W, floor))
        self.l1, self.l2, self.tol = l1, l2, tol
        self.beta = float(_divergence(beta).beta)
        self.solver = solver
        self.max_iter = max_iter
        self.gradient = Implicit() if gradient is None else gradient
        self.normalize = normalize

    @property
    def W(self) -> Array:
        """The dictionary, softplus(Θ), columns of unit ℓ2 norm when ``normalize``."""
        W = jax.nn.softplus(self.theta)
        if self.normalize:
            W = W / jnp.linalg.norm(W, axis=0, keepdims=True)
        return W

    def __call__(self, v: Array, *, key: Array | None = None) -> Array:
        """The code h* (r,) of one sample v (n,) (or H* (r×m) of columns V (n×m))."""
        return encode(
            v,
            self.W,
            beta=self.beta,
            l1=self.l1,
            l2=self.l2,
            solver=self.solver,
            max_iter=self.max_iter,
            tol=self.tol,
            gradient=self.gradient,
        )


# ---------------------------------------------------------------------------------------------
# hyperparameter gradients


def holdout_loss(
    l1,
    V_obs,
    W_obs,
    V_held,
    W_held,
    *,
    beta=2.0,
    l2=0.0,
    **encode_kwargs,
) -> Array:
    """Held-out reconstruction error D_β(V_held‖W_held H*) / size, H* = encode(V_obs, W_obs, l1).

    The rows of V (features) are split into observed (V_obs, W_obs) and held-out (V_held,
    W_held) parts; the code is fitted on the observed rows and judged on the others.
    Differentiable in ``l1`` (and the arrays) through ``encode``'s gradient mode.
    """
    H = encode(V_obs, W_obs, beta=beta, l1=l1, l2=l2, **encode_kwargs)
    V_held = jnp.asarray(V_held)
    return _divergence(beta).value(V_held, W_held @ H) / V_held.size


class L1Path(NamedTuple):
    """``tune_l1``'s trajectory: l1 and the held-out loss before each step (and at the end)."""

    l1: Array
    loss: Array


def tune_l1(
    V_obs,
    W_obs,
    V_held,
    W_held,
    *,
    l1_init: float = 1e-3,
    steps: int = 20,
    learning_rate: float = 0.2,
    **loss_kwargs,
) -> L1Path:
    """Gradient descent with Adam on log l1 to minimize ``holdout_loss``; one jit'd scan.

    Optimizing log l1 keeps l1 > 0.  Returns ``steps + 1`` values of l1 and of the loss.
    """
    import optax

    if not l1_init > 0:
        raise ValueError(f"l1_init must be > 0 (we optimize log l1), got {l1_init}")
    V_obs, W_obs = as_float_array(V_obs, "V_obs"), as_float_array(W_obs, "W_obs")
    V_held, W_held = as_float_array(V_held, "V_held"), as_float_array(W_held, "W_held")
    opt = optax.adam(learning_rate)

    def loss(log_l1):
        return holdout_loss(jnp.exp(log_l1), V_obs, W_obs, V_held, W_held, **loss_kwargs)

    value_and_grad = jax.value_and_grad(loss)

    @jax.jit
    def run(log_l1):
        def step(carry, _):
            x, state = carry
            value, g = value_and_grad(x)
            updates, state = opt.update(g, state)
            return (optax.apply_updates(x, updates), state), (jnp.exp(x), value)

        (x, _), (l1s, values) = jax.lax.scan(step, (log_l1, opt.init(log_l1)), None, length=steps)
        return jnp.append(l1s, jnp.exp(x)), jnp.append(values, loss(x))

    l1s, values = run(jnp.log(jnp.asarray(l1_init, V_obs.dtype)))
    return L1Path(l1s, values)


__all__ = [
    "Implicit",
    "L1Path",
    "NMFLayer",
    "ProjectedGradientH",
    "Unrolled",
    "default_code_init",
    "encode",
    "factorize",
    "holdout_loss",
    "kkt_adjoint",
    "tune_l1",
]
