"""``encode``: the non-negative code of data on a fixed dictionary, differentiable.

    H*(V, W, l1, l2, β) = argmin_{H ≥ 0}  D_β(V‖WH) + l1‖H‖₁ + ½ l2‖H‖_F²,

V (n,) or (n×m) (or a sparse n×m: BCOO or SciPy, see ``jnmf.problem``), W (n×r) ≥ 0,
H* (r,) or (r×m).  The code is one call of ``jnmf.solve`` with
W held fixed (``update_W=False`` of the alternating base); how it is differentiated is the
solve's adjoint: ``Unrolled()`` (the truncated algorithm, a checkpointed scan) or
``Implicit()`` (the KKT conditions of the code, default) — see ``jnmf.adjoint``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import Array

from jnmf import sparse
from jnmf.adjoint import Implicit, Unrolled
from jnmf.checks import as_sparse_matrix, check_matrix, check_positive_int, is_sparse_input
from jnmf.optimality import gradient_parts_H, penalty_gradient
from jnmf.problem import Factors, Problem, as_float_array, make_problem
from jnmf.solve import Budget, solve
from jnmf.solvers.base import AbstractAlternatingSolver, AbstractSolver
from jnmf.solvers.mu import MultiplicativeUpdate


class ProjectedGradientH(AbstractAlternatingSolver):
    """Projected gradient with step 1/L for β = 2: X ← max(0, X − ∇f / L), per block.

    L = ‖WᵀW‖_F + l2 bounds the Lipschitz constant ‖WᵀW‖₂ + l2 of the block's gradient, so
    every step decreases f.  L is computed from the fixed factor in ``init_block``; use it with
    a factor held fixed (``encode`` passes ``update_W=False``).
    """

    betas = (2.0,)
    weights = False

    def init_block(self, problem: Problem, W: Array, H: Array) -> Array:
        L = jnp.sqrt(jnp.sum((W.T @ W) ** 2)) + problem.l2_H
        return jnp.maximum(L, jnp.finfo(W.dtype).tiny)

    def update_block(self, problem: Problem, W: Array, H: Array, L: Array, model):
        P, N = gradient_parts_H(problem, W, H)
        G = P - N + penalty_gradient(problem.l1_H, problem.l2_H, H)
        return jnp.maximum(H - G / L, 0.0), L, None


ENCODE_SOLVERS = ("mu", "pg")


def encode_solver(solver) -> AbstractSolver:
    """The W-fixed solver of ``encode``: "mu", "pg" or an object that keeps W fixed."""
    if isinstance(solver, AbstractSolver):
        if solver.free[0]:
            raise ValueError(
                "encode keeps W fixed: pass a solver with update_W=False, e.g. "
                "MultiplicativeUpdate(update_W=False), or solver='mu'"
            )
        return solver
    if solver == "mu":
        return MultiplicativeUpdate(update_W=False)
    if solver == "pg":
        return ProjectedGradientH(update_W=False)
    raise ValueError(
        f"unknown encode solver {solver!r}: use one of {ENCODE_SOLVERS} or a solver object "
        "that keeps W fixed"
    )


def default_code_init(V: Array, W: Array) -> Array:
    """H₀ (r×m) with every entry of column j equal to c_j = ⟨W1, v_j⟩ / ‖W1‖² (clipped at 0).

    c_j is the least-squares scale of the constant code: argmin_c ‖v_j − c W1‖².  A column
    with c_j = 0 (v_j = 0) starts at a tiny positive value so the start is never all zero.
    V may be a ``jnmf.sparse.SparseMatrix``.
    """
    s = jnp.sum(W, axis=1)
    if sparse.is_sparse(V):
        sV = sparse.left_product(s[:, None], V, V.data)[0]
    else:
        sV = s @ V
    c = sV / jnp.maximum(s @ s, jnp.finfo(V.dtype).tiny)
    c = jnp.where(c > 0, c, jnp.finfo(V.dtype).eps)
    return jnp.broadcast_to(c, (W.shape[1], V.shape[1]))


def check_dictionary(W: Array, n: int) -> None:
    """W must be an n×r matrix (r ≥ 1) of finite non-negative entries."""
    if W.ndim != 2:
        raise ValueError(f"W must be a 2-D dictionary (n×r), got shape {tuple(W.shape)}")
    if W.shape[0] != n:
        raise ValueError(
            f"W has {W.shape[0]} rows but V has {n} features: W must be n×r with n = V.shape[0] "
            "(samples are columns of V)"
        )
    check_matrix(W, "W")


def encode(
    V,
    W,
    *,
    beta=2.0,
    l1=0.0,
    l2=0.0,
    solver: str | AbstractSolver = "mu",
    max_iter: int = 500,
    tol=1e-8,
    init=None,
    gradient: Unrolled | Implicit | None = None,
    every: int = 10,
) -> Array:
    """H* = argmin_{H ≥ 0} D_β(V‖WH) + l1‖H‖₁ + ½ l2‖H‖_F², differentiable.

    Args:
        V: data, (n,) for one sample or (n×m) for m samples as columns; non-negative; an
            n×m BCOO or SciPy sparse matrix is kept sparse.
        W: dictionary (n×r), non-negative.
        beta: β (a Python number, a name, or a traced scalar to differentiate in β).
        l1, l2: penalty weights ≥ 0 on H (traced: changing them does not recompile).
        solver: "mu" (multiplicative updates with W fixed; any β), "pg" (projected gradient;
            β = 2) or a solver object that keeps W fixed.
        max_iter: solver steps (static).  ``Unrolled`` always runs exactly ``max_iter``.
        tol: relative objective decrease per iteration that stops the ``Implicit`` forward
            solve (checked every ``every`` steps, as in ``jnmf.solve``).
        init: initial H₀ of H*'s shape (default ``default_code_init``; MU needs H₀ > 0).
        gradient: the solve's adjoint, ``Implicit()`` (default) or ``Unrolled()``.

    Returns:
        H*, (r,) or (r×m), in the dtype of V and W.

    Raises ``ValueError`` (before compiling) for shapes that do not match, negative or
    non-finite W, V or H₀, an all-zero H₀, negative penalties, or a β the solver cannot handle.
    """
    gradient = Implicit() if gradient is None else gradient
    if not isinstance(gradient, (Unrolled, Implicit)):
        raise ValueError(f"gradient must be Unrolled(...) or Implicit(...), got {gradient!r}")
    if is_sparse_input(V):
        V2, single = as_sparse_matrix(V, "V"), False
    else:
        V = as_float_array(V, "V")
        if V.ndim not in (1, 2):
            raise ValueError(f"V must be (n,) or (n×m), got shape {tuple(V.shape)}")
        single = V.ndim == 1
        V2 = V[:, None] if single else V
    W = as_float_array(W, "W")
    check_dictionary(W, V2.shape[0])
    dtype = jnp.result_type(V2.dtype, W.dtype)
    V2, W = V2.astype(dtype), W.astype(dtype)
    with jax.ensure_compile_time_eval():
        problem = make_problem(V2, beta, l1_H=l1, l2_H=l2)
    budget = Budget(
        max_iter=check_positive_int("max_iter", max_iter),
        tol=tol,
        every=check_positive_int("every", every),
    )
    solver_obj = encode_solver(solver)
    r, m = W.shape[1], V2.shape[1]
    if init is None:
        H0 = default_code_init(V2, W)
    else:
        H0 = as_float_array(init, "init").astype(dtype)
        H0 = H0[:, None] if (single and H0.ndim == 1) else H0
        if H0.shape != (r, m):
            raise ValueError(f"init must have H*'s shape {(r,) if single else (r, m)}")
    H = solve(problem, solver_obj, Factors(W, H0), budget, adjoint=gradient).H
    return H[:, 0] if single else H


__all__ = ["ENCODE_SOLVERS", "ProjectedGradientH", "default_code_init", "encode"]
