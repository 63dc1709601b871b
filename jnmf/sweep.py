"""Rank sweeps: every (rank, restart) pair of an NMF model as one batched computation.

``rank_sweep(V, ranks, n_restarts, ...)`` fits V ≈ W H at each rank r in ``ranks`` from
``n_restarts`` starts.  Restart i at rank r starts from ``initialize(keys[i], problem, r, init)``
with ``keys = restart_keys(key, n_restarts)``, the same starts ``jnmf.nmf(V, r, n_restarts=…,
key=key)`` uses, so the sweep at rank r reproduces ``nmf``'s restarts.

Two execution plans give the same factors:

* ``"padded"``: every rank is padded to r_max = max(ranks) with a 0/1 component mask
  (``ComponentMask``).  Padded columns of W and rows of H start at 0 and are set to 0
  after every step, so they add exact zeros to every product WH, WᵀW, Wᵀ R, R Hᵀ; all
  (rank, restart) pairs then share one shape and run in one compiled program.  For
  multiplicative updates the padded entries stay 0 by themselves: their gradient parts are
  0 and 0, and the update's 0/0 is defined as 0 (``solvers.mu._ratio``), so no NaN appears.
  The plan for accelerators.
* ``"loop"``: a Python loop over ranks, one compiled program per rank with the restarts
  batched; no padded work.  The plan for CPUs.

Both are calls of the one batching function ``batch.solve_batch`` (padded: with component
masks); a solver whose class does not declare ``padding_exact`` runs the loop plan only.

``"auto"`` takes ``"padded"`` on GPU/TPU and ``"loop"`` on CPU.

How the pairs inside one program are batched is ``batch_size``: ``None`` vmaps all of them
(fast on accelerators); an integer b runs them ``b`` at a time with ``lax.map``.  On XLA's
CPU backend a ``vmap`` over restarts was measured 0.4–0.8× the speed of a Python loop over
single solves (ALL/AML, 5000×38, KL-MU): the batched skinny products stream B copies of the
n×m quotient V/WH through the cache, where a single solve keeps its working set hot.  A
sequential ``lax.map`` (b = 1) runs each fit with a hot cache inside one program and lets
each fit stop at its own convergence; ``"auto"`` takes b = 1 on CPU and full ``vmap``
elsewhere (see ``benchmarks/sweep.py``).
"""

from __future__ import annotations

from collections.abc import Iterable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from jnmf.batch import best_of, restart_keys, solve_batch
from jnmf.checks import check_nonneg_scalar, check_positive_int, check_rank
from jnmf.init import check_init, initialize
from jnmf.problem import Factors, Problem, make_problem
from jnmf.program import Program, solve_work
from jnmf.solve import DEFAULT_EVERY, Budget, Solution, check_scale
from jnmf.solvers import AbstractSolver, get_solver

PLANS = ("auto", "padded", "loop")


class RankSweep(eqx.Module):
    """All fits of a rank sweep: a batched ``Solution`` with axes (rank index, restart, ...)
    and its ranks.

    ``W``: (K, R, n, r_max) and ``H``: (K, R, r_max, m), zero beyond each rank;
    ``objective``, ``n_iter``, ``status``: (K, R); ``history``: a ``History`` with leaves
    (K, R, n_records).  ``ranks[k]`` is the rank of index k.
    """

    solution: Solution
    ranks: tuple[int, ...] = eqx.field(static=True)
    plan: str = eqx.field(static=True)

    W = property(lambda self: self.solution.W)
    H = property(lambda self: self.solution.H)
    objective = property(lambda self: self.solution.objective)
    n_iter = property(lambda self: self.solution.n_iter)
    status = property(lambda self: self.solution.status)
    history = property(lambda self: self.solution.history)

    def index(self, rank: int) -> int:
        """Position of ``rank`` in ``ranks``."""
        if rank not in self.ranks:
            raise ValueError(f"rank {rank} was not swept; ranks are {self.ranks}")
        return self.ranks.index(rank)

    @property
    def objectives(self) -> Array:
        """Final objectives, (K, R)."""
        return self.objective

    def restarts(self, rank: int) -> Solution:
        """Every restart at ``rank`` as a batched ``Solution``: W (R, n, r), H (R, r, m)."""
        k = self.index(rank)
        sol = jax.tree_util.tree_map(lambda x: x[k], self.solution)
        return eqx.tree_at(lambda s: (s.W, s.H), sol, (sol.W[..., :rank], sol.H[..., :rank, :]))

    def best(self, rank: int) -> Solution:
        """The restart with the smallest objective at ``rank`` (``restarts(rank).objective``
        holds every restart's)."""
        return best_of(self.restarts(rank))

    def best_solutions(self) -> dict[int, Solution]:
        """``{rank: best Solution}`` over every swept rank."""
        return {r: self.best(r) for r in self.ranks}


def default_plan() -> tuple[str, int | None]:
    """(plan, batch_size) for the default backend: padded + vmap on accelerators, else loop."""
    if jax.default_backend() == "cpu":
        return "loop", 1
    return "padded", None


def check_ranks(ranks, shape: tuple[int, int], init) -> tuple[int, ...]:
    """Validate ``ranks`` (distinct integers ≥ 1) and return them sorted as a tuple."""
    if isinstance(ranks, (int, np.integer)):
        ranks = (ranks,)
    if not isinstance(ranks, Iterable):
        raise ValueError(f"ranks must be an iterable of integers, got {ranks!r}")
    ranks = tuple(ranks)
    if not ranks:
        raise ValueError("ranks is empty: give at least one rank, e.g. ranks=range(2, 11)")
    ranks = tuple(check_rank(r) for r in ranks)
    if len(set(ranks)) != len(ranks):
        raise ValueError(f"ranks must be distinct, got {ranks}")
    ranks = tuple(sorted(ranks))
    for r in ranks:
        check_init(init, shape, r, None)
    return ranks


def initial_factors(
    problem: Problem, ranks: tuple[int, ...], keys: Array, init: str, r_max: int
) -> tuple[Factors, Array]:
    """Starts of every (rank, restart) pair, zero-padded to ``r_max``, and component masks.

    Returns Factors (K·R, n, r_max), (K·R, r_max, m) and the mask (K·R, r_max), ordered
    rank-major: pair k·R + i is restart i at ``ranks[k]``.
    """
    Ws, Hs, masks = [], [], []
    for r in ranks:
        W0, H0 = jax.vmap(lambda k, r=r: initialize(k, problem, r, init))(keys)
        Ws.append(jnp.pad(W0, ((0, 0), (0, 0), (0, r_max - r))))
        Hs.append(jnp.pad(H0, ((0, 0), (0, r_max - r), (0, 0))))
        mask = (jnp.arange(r_max) < r).astype(problem.dtype)
        masks.append(jnp.broadcast_to(mask, (keys.shape[0], r_max)))
    return Factors(jnp.concatenate(Ws), jnp.concatenate(Hs)), jnp.concatenate(masks)


def _by_rank(sol: Solution, K: int, R: int) -> Solution:
    return jax.tree_util.tree_map(lambda x: x.reshape((K, R) + x.shape[1:]), sol)


def _sweep(problem, solver, ranks, keys, init, budget, batch_size) -> Solution:
    """All (rank, restart) pairs of ``ranks``, padded to max(ranks), in one program."""
    starts, masks = initial_factors(problem, ranks, keys, init, max(ranks))
    padded = masks if len(ranks) > 1 else None
    sol = solve_batch(problem, solver, starts, budget, masks=padded, batch_size=batch_size)
    return _by_rank(sol, len(ranks), keys.shape[0])


def _sweep_work(problem, solver, ranks, keys, init, budget, batch_size) -> int:
    return solve_work(problem.shape, max(ranks), budget.max_iter, len(ranks) * keys.shape[0])


_sweep_program = Program(_sweep, _sweep_work)


def _pad_rank(sol: Solution, r_max: int) -> Solution:
    r = sol.W.shape[-1]
    W = jnp.pad(sol.W, [(0, 0)] * (sol.W.ndim - 1) + [(0, r_max - r)])
    H = jnp.pad(sol.H, [(0, 0)] * (sol.H.ndim - 2) + [(0, r_max - r), (0, 0)])
    return eqx.tree_at(lambda s: (s.W, s.H), sol, (W, H))


def sweep_problem(
    problem: Problem,
    solver: AbstractSolver,
    ranks: tuple[int, ...],
    keys: Array,
    budget: Budget,
    *,
    init: str = "random",
    plan: str = "auto",
    batch_size="auto",
) -> RankSweep:
    """``rank_sweep`` on a built ``Problem`` with explicit restart keys (no validation of V)."""
    auto_plan, auto_batch = default_plan()
    exact = type(solver).padding_exact
    if plan == "auto":
        plan = auto_plan if exact else "loop"
    elif plan == "padded" and not exact:
        raise ValueError(
            f"solver {solver.name!r} depends on the rank beyond its zero padded components, so "
            "the padded plan would change its factors: use plan='loop' (or 'auto')"
        )
    if batch_size == "auto":
        batch_size = auto_batch
    elif batch_size == "serial":
        batch_size = 1
    if plan == "padded":
        sol = _sweep_program(problem, solver, ranks, keys, init, budget, batch_size)
    else:
        r_max = max(ranks)
        per_rank = [
            _pad_rank(
                jax.tree_util.tree_map(
                    lambda x: x[0],
                    _sweep_program(problem, solver, (r,), keys, init, budget, batch_size),
                ),
                r_max,
            )
            for r in ranks
        ]
        sol = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *per_rank)
    return RankSweep(solution=sol, ranks=ranks, plan=plan)


def check_plan(plan, batch_size) -> None:
    """Raise ``ValueError`` for an unknown plan or a bad batch size."""
    if plan not in PLANS:
        raise ValueError(f"unknown plan {plan!r}: use one of {PLANS}")
    if batch_size not in ("auto", "serial", None) and (
        isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
    ):
        raise ValueError(
            f"batch_size must be 'auto', 'serial', None or an integer ≥ 1, got {batch_size!r}"
        )


def rank_sweep(
    V,
    ranks=range(2, 11),
    *,
    n_restarts: int = 20,
    beta=2.0,
    solver: str | AbstractSolver = "mu",
    init: str = "random",
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
    plan: str = "auto",
    batch_size="auto",
) -> RankSweep:
    """Fit V ≈ W H at every rank in ``ranks`` from ``n_restarts`` starts each.

    Minimizes Σ M_ij d_β(V_ij | (WH)_ij) + penalties (as ``jnmf.nmf``) for each
    (rank, restart) pair.  Restart i at rank r starts from ``initialize(keys[i], problem, r,
    init)``, ``keys = restart_keys(key, n_restarts)``: the same starts as ``jnmf.nmf(V, r,
    n_restarts=n_restarts, key=key, init=init)``.

    Args:
        V: data, n×m, ≥ 0 (NaN allowed where ``weights`` is 0).
        ranks: distinct integers ≥ 1 (sorted in the result).
        n_restarts: starts per rank.
        beta, solver, init, max_iter, tol, kkt_tol, key, l1_*, l2_*, weights, every: as
            ``jnmf.nmf``; ``init`` must be an initializer name.
        plan: "padded" (one program over all pairs, ranks padded to max(ranks) with a
            component mask), "loop" (one program per rank, restarts batched) or "auto"
            (padded on GPU/TPU, loop on CPU).  Both give the same factors.
        batch_size: pairs per ``vmap`` inside a program: None = all at once, an integer b =
            ``lax.map`` b at a time, "auto" = None on accelerators and 1 on CPU.

    Returns:
        A ``RankSweep``: ``.best(r)``, ``.restarts(r)``, ``.objectives`` (K, R), histories.
    """
    check_plan(plan, batch_size)
    problem = make_problem(V, beta, l1_W=l1_W, l1_H=l1_H, l2_W=l2_W, l2_H=l2_H, weights=weights)
    if not isinstance(init, str):
        raise ValueError(
            f"rank_sweep needs an initializer name for init (one of random, nndsvd, nndsvda, "
            f"nndsvdar), got {type(init).__name__}; fit a fixed start with jnmf.nmf"
        )
    ranks = check_ranks(ranks, problem.shape, init)
    n_restarts = check_positive_int("n_restarts", n_restarts)
    budget = Budget(
        max_iter=check_positive_int("max_iter", max_iter),
        tol=check_nonneg_scalar("tol", tol),
        kkt_tol=check_nonneg_scalar("kkt_tol", kkt_tol),
        every=check_positive_int("every", every),
    )
    solver_obj = get_solver(solver)
    solver_obj.check(problem)
    check_scale(problem)
    keys = restart_keys(key, n_restarts)
    return sweep_problem(
        problem, solver_obj, ranks, keys, budget, init=init, plan=plan, batch_size=batch_size
    )


__all__ = ["RankSweep", "rank_sweep", "sweep_problem"]
