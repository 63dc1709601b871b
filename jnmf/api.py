"""``jnmf.nmf``: the one-call entry point over the composable core.

    sol = jnmf.nmf(V, rank=10, beta="kullback-leibler", solver="mu", init="nndsvda",
                   n_restarts=8, max_iter=500, tol=1e-5, key=0)

validates everything in Python (``ValueError`` before compiling), builds a ``Problem``,
runs ``n_restarts`` solves as one vmapped, jit-compiled program and returns the best
(or all of them: ``return_restarts=True``).  With ``mesh=`` the same program runs over a
device mesh, V split by columns (and rows), on one host or many (``jnmf.shard``).
"""

from __future__ import annotations

import warnings

from jnmf.batch import fit, resolve_batch_size, restart_keys
from jnmf.checks import check_key, check_nonneg_scalar, check_positive_int, check_rank
from jnmf.init import check_init
from jnmf.problem import make_problem
from jnmf.shard import global_problem, is_global, layout_for, refuse_sparse
from jnmf.solve import DEFAULT_EVERY, Budget, Solution, check_scale
from jnmf.solvers import SOLVERS, AbstractSolver, get_solver
from jnmf.solvers.auto import pick_solver


def nmf(
    V,
    rank: int,
    *,
    beta=2.0,
    solver: str | AbstractSolver = "mu",
    init="random",
    n_restarts: int = 1,
    max_iter: int = 200,
    tol: float = 1e-4,
    kkt_tol: float = 0.0,
    key=0,
    l1_W: float = 0.0,
    l1_H: float = 0.0,
    l2_W: float = 0.0,
    l2_H: float = 0.0,
    weights=None,
    every: int = DEFAULT_EVERY,
    batch_size="auto",
    return_restarts: bool = False,
    mesh=None,
) -> Solution:
    """Factorize V (n×m, ≥ 0) as W H with W (n×r) ≥ 0, H (r×m) ≥ 0.

    Minimizes Σ M_ij d_β(V_ij | (WH)_ij) + l1_W‖W‖₁ + l1_H‖H‖₁ + ½l2_W‖W‖² + ½l2_H‖H‖².

    Args:
        V: data, n×m, non-negative and finite (NaN allowed where ``weights`` is 0); dense, or
            sparse (``jax.experimental.sparse.BCOO`` or SciPy, kept sparse: WH is formed only
            at the stored entries, ``jnmf.sparse``; no weights, β > 0, and solvers that say
            so in their ``check``).  float16/bfloat16 V is computed in float32, and
            subnormal entries are set to 0 (see ``jnmf.checks``).
        rank: r ≥ 1.
        beta: a real β or "frobenius" (2), "kullback-leibler" (1), "itakura-saito" (0).
        solver: a name in ``jnmf.solvers.SOLVERS``, a solver object, or "auto": the fastest
            for the problem per the race table (``jnmf.solvers.auto.pick_solver``: accelerated
            HALS at β = 2, kl-dna at β = 1, MU otherwise).
        init: "random", "nndsvd", "nndsvda", "nndsvdar" or a tuple ``(W0, H0)``.
        n_restarts: independent starts (keys split from ``key``), vmapped; the best is kept.
        max_iter, tol, kkt_tol, every: the stopping ``Budget`` (``jnmf.Budget``): ``tol`` is
            the relative objective decrease per iteration, checked every ``every`` steps.
        batch_size: how restarts are batched in the one compiled program: None = one ``vmap``,
            b = ``lax.map`` b at a time, "auto" = 1 on CPU (faster there) and None elsewhere.
        key: an int seed (Python or NumPy, |key| < 2⁶³) or a JAX PRNG key.
        weights: optional M ≥ 0 of V's shape (0 marks a missing entry).

        return_restarts: return every restart as one batched ``Solution`` (leading axis of
            length ``n_restarts``: ``sol.objective`` holds each restart's final objective;
            ``jnmf.best_of(sol)`` picks the best) instead of the best alone.
        mesh: a ``jax.sharding.Mesh`` with axes named from ``("restarts", "rows",
            "columns")`` (``jnmf.shard.make_mesh``): V is split by columns over "columns"
            (and by rows over "rows"), the restarts over "restarts"; each size must divide
            m, n and ``n_restarts``.  Per iteration only r×r, n×r and r×m blocks cross
            devices (all-reduces of WᵀV, VHᵀ, the Grams and scalars); results equal the
            single-device fit up to the order of sums.  V may be a host array (NumPy, the
            same on every process) or a global ``jax.Array`` already split over the mesh.
            Several hosts: call ``jax.distributed.initialize(...)`` first on every process,
            build the mesh over ``jax.devices()`` and call ``nmf`` with the same arguments
            everywhere; ``jnmf.shard.gather`` copies the factors to every host (recipe in
            ``jnmf.shard``'s docstring).  Sparse V is refused with a mesh; NNDSVD inits
            gather V once for their SVD.

    Returns:
        The best restart's ``Solution`` (every restart's with ``return_restarts=True``);
        with a mesh its arrays are global arrays, W split by rows and H by columns.
    """
    rank = check_rank(rank)
    n_restarts = check_positive_int("n_restarts", n_restarts)
    if not isinstance(return_restarts, bool):
        raise TypeError(f"return_restarts must be True or False, got {return_restarts!r}")
    max_iter = check_positive_int("max_iter", max_iter)
    every = check_positive_int("every", every)
    tol = check_nonneg_scalar("tol", tol)
    kkt_tol = check_nonneg_scalar("kkt_tol", kkt_tol)
    key = check_key(key)
    penalties = {"l1_W": l1_W, "l1_H": l1_H, "l2_W": l2_W, "l2_H": l2_H}
    layout = None
    if mesh is not None:
        refuse_sparse(V)
        layout = layout_for(mesh, _shape(V), n_restarts, batch_size)
    if layout is not None and (is_global(V) or is_global(weights)):
        problem = global_problem(V, beta, layout, weights=weights, **penalties)
    else:
        problem = make_problem(V, beta, weights=weights, **penalties)
    n, m = problem.shape
    if isinstance(solver, str) and solver == "auto":
        solver = pick_solver(problem)
    solver_obj = get_solver(solver)
    solver_obj.check(problem)
    start = check_init(init, (n, m), rank, problem.dtype)
    deterministic = not isinstance(start, str) or start in ("nndsvd", "nndsvda")
    if deterministic and n_restarts > 1:
        given = "init=(W0, H0)" if not isinstance(start, str) else f"init={start!r}"
        warnings.warn(
            f"{given} is deterministic: all {n_restarts} restarts start from the same "
            "factors and give the same result. Use n_restarts=1, or init='random' or "
            "'nndsvdar' for distinct restarts.",
            stacklevel=2,
        )
    batch = resolve_batch_size(batch_size)
    keys = restart_keys(key, n_restarts)
    check_scale(problem)  # a global V's largest entry is read on its devices
    if layout is not None and layout.size("restarts") > 1:
        batch = None  # restarts spread over devices run as one vmap (layout_for checked it)
    budget = Budget(max_iter=max_iter, tol=tol, kkt_tol=kkt_tol, every=every)
    return fit(problem, solver_obj, keys, start, rank, budget, batch, return_restarts, layout)


def _shape(V) -> tuple[int, ...]:
    """V's shape before conversion (``make_problem`` checks it is a 2-D matrix)."""
    shape = getattr(V, "shape", None)
    if shape is None:
        import numpy as np

        shape = np.shape(V)
    if len(shape) != 2:
        raise ValueError(f"V must be a 2-D matrix (n×m), got shape {tuple(shape)}")
    return tuple(shape)


__all__ = ["nmf", "SOLVERS"]
