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

from jnmf.batch import best_of, map_batched, restart_keys
from jnmf.init import check_init, initialize
from jnmf.problem import Factors, Problem, make_problem
from jnmf.solve import History, Solution, solve
from jnmf.solvers import AbstractSolver, MultiplicativeUpdate, get_solver

PLANS = ("auto", "padded", "loop")


class ComponentMask(AbstractSolver):
    """Wrap a solver so that components with ``mask[k] == 0`` stay exactly zero.

    After each inner step, W[:, k] and H[k, :] are replaced by 0 where ``mask[k] == 0``
    (with ``jnp.where``, so even a NaN there cannot leak).  With zero-initialized padded
    components the active components follow exactly the iterates of the unpadded solve,
    provided the inner solver maps a zero component to zero without touching the others
    (multiplicative updates do).
    """

    solver: AbstractSolver
    mask: Array

    def check(self, problem: Problem) -> None:
        self.solver.check(problem)

    def init(self, problem: Problem, factors: Factors):
        return self.solver.init(problem, factors)

    def step(self, problem: Problem, factors: Factors, state):
        (W, H), state = self.solver.step(problem, factors, state)
        keep = self.mask > 0
        return Factors(jnp.where(keep[None, :], W, 0.0), jnp.where(keep[:, None], H, 0.0)), state


# Solvers whose iterates depend on the number of components through more than the zero
# padded components (e.g. inner-iteration counts or step sizes computed from r): padding
# changes their factors (measured: accelerated HALS and optax projected gradient differ by
# 3–4% after 30 iterations), so they run the "loop" plan only.
NOT_PADDING_EXACT = ("AcceleratedHALS", "OptaxProjectedGradient")


def padding_exact(solver: AbstractSolver) -> bool:
    """Whether the padded plan reproduces ``solver``'s unpadded iterates."""
    return type(solver).__name__ not in NOT_PADDING_EXACT


def zero_safe(solver: AbstractSolver) -> bool:
    """True when ``solver`` keeps a zero component exactly zero by itself.

    Multiplicative updates without a floor do: a zero column of W (row of H) has gradient
    parts P = N = 0 and its update 0 · ρ stays 0 (ρ = 0 where the denominator is 0).
    """
    return (
        isinstance(solver, MultiplicativeUpdate)
        and isinstance(solver.floor, (int, float))
        and (solver.floor == 0)
    )


def masked_solver(solver: AbstractSolver, mask: Array, padded: bool) -> AbstractSolver:
    """The solver a sweep runs: ``solver`` wrapped in ``ComponentMask`` when some components
    are padded and it does not keep zero components at zero by itself."""
    if not padded or zero_safe(solver):
        return solver
    return ComponentMask(solver, mask)


class RankSweep(eqx.Module):
    """All fits of a rank sweep, stacked as (rank index, restart, ...).

    ``W``: (K, R, n, r_max) and ``H``: (K, R, r_max, m), zero beyond each rank;
    ``objective``, ``n_iter``, ``status``: (K, R); ``history``: a ``History`` with leaves
    (K, R, n_records).  ``ranks[k]`` is the rank of index k.
    """

    W: Array
    H: Array
    objective: Array
    n_iter: Array
    status: Array
    history: History
    ranks: tuple[int, ...] = eqx.field(static=True)
    plan: str = eqx.field(static=True)

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
        hist = jax.tree_util.tree_map(lambda x: x[k], self.history)
        return Solution(
            W=self.W[k, :, :, :rank],
            H=self.H[k, :, :rank, :],
            objective=self.objective[k],
            n_iter=self.n_iter[k],
            status=self.status[k],
            history=hist,
        )

    def best(self, rank: int) -> Solution:
        """The restart with the smallest objective at ``rank`` (``restart_objectives`` set)."""
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
    for r in ranks:
        if isinstance(r, bool) or not isinstance(r, (int, np.integer)) or r < 1:
            raise ValueError(f"every rank must be an integer ≥ 1, got {r!r} in {ranks}")
    if len(set(ranks)) != len(ranks):
        raise ValueError(f"ranks must be distinct, got {ranks}")
    ranks = tuple(sorted(int(r) for r in ranks))
    for r in ranks:
        check_init(init, shape, r, None)
    return ranks


def initial_factors(
    problem: Problem, ranks: tuple[int, ...], keys: Array, init: str, r_max: int
) -> tuple[Array, Array, Array]:
    """Starts of every (rank, restart) pair, zero-padded to ``r_max``.

    Returns W0 (K·R, n, r_max), H0 (K·R, r_max, m) and the component mask (K·R, r_max),
    ordered rank-major: pair k·R + i is restart i at ``ranks[k]``.
    """
    Ws, Hs, masks = [], [], []
    for r in ranks:
        W0, H0 = jax.vmap(lambda k, r=r: initialize(k, problem, r, init))(keys)
        Ws.append(jnp.pad(W0, ((0, 0), (0, 0), (0, r_max - r))))
        Hs.append(jnp.pad(H0, ((0, 0), (0, r_max - r), (0, 0))))
        mask = (jnp.arange(r_max) < r).astype(problem.dtype)
        masks.append(jnp.broadcast_to(mask, (keys.shape[0], r_max)))
    return jnp.concatenate(Ws), jnp.concatenate(Hs), jnp.concatenate(masks)


def solve_masked(problem, solver, W0, H0, mask, *, max_iter, tol, kkt_tol, every, padded):
    """One solve from (W0, H0) with the component ``mask`` applied (see ``masked_solver``)."""
    return solve(
        problem,
        masked_solver(solver, mask, padded),
        Factors(W0, H0),
        max_iter=max_iter,
        tol=tol,
        kkt_tol=kkt_tol,
        every=every,
    )


def solve_pairs(
    problem: Problem,
    solver: AbstractSolver,
    W0: Array,
    H0: Array,
    mask: Array,
    *,
    max_iter: int,
    tol,
    kkt_tol,
    every: int,
    batch_size: int | None,
    padded: bool = True,
) -> Solution:
    """One masked solve per pair (leading axis of W0, H0, mask); a batched ``Solution``."""

    def one(args):
        W, H, m = args
        opts = dict(max_iter=max_iter, tol=tol, kkt_tol=kkt_tol, every=every, padded=padded)
        return solve_masked(problem, solver, W, H, m, **opts)

    return map_batched(one, (W0, H0, mask), batch_size)


@eqx.filter_jit
def _sweep_program(
    problem: Problem,
    solver: AbstractSolver,
    ranks: tuple[int, ...],
    keys: Array,
    init: str,
    *,
    max_iter: int,
    tol,
    kkt_tol,
    every: int,
    batch_size: int | None,
) -> Solution:
    """All (rank, restart) pairs of ``ranks``, padded to max(ranks), in one program."""
    W0, H0, mask = initial_factors(problem, ranks, keys, init, max(ranks))
    sol = solve_pairs(
        problem,
        solver,
        W0,
        H0,
        mask,
        max_iter=max_iter,
        tol=tol,
        kkt_tol=kkt_tol,
        every=every,
        batch_size=batch_size,
        padded=len(ranks) > 1,
    )
    K, R = len(ranks), keys.shape[0]
    arrays, static = eqx.partition(sol, eqx.is_array)
    arrays = jax.tree_util.tree_map(lambda x: x.reshape((K, R) + x.shape[1:]), arrays)
    return eqx.combine(arrays, static)


_starts = eqx.filter_jit(initial_factors)


_solve_one = eqx.filter_jit(solve_masked)


def _serial(problem, solver, ranks, keys, init, *, batch_size, **opts) -> Solution:
    """Every pair as its own call of one compiled single solve, stacked as (K, R, ...)."""
    W0, H0, mask = _starts(problem, ranks, keys, init, max(ranks))
    sols = [
        _solve_one(problem, solver, W0[p], H0[p], mask[p], padded=len(ranks) > 1, **opts)
        for p in range(W0.shape[0])
    ]
    arrays = [eqx.partition(s, eqx.is_array)[0] for s in sols]
    static = eqx.partition(sols[0], eqx.is_array)[1]
    K, R = len(ranks), keys.shape[0]
    stacked = jax.tree_util.tree_map(
        lambda *xs: jnp.stack(xs).reshape((K, R) + xs[0].shape), *arrays
    )
    return eqx.combine(stacked, static)


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
    *,
    init: str = "random",
    max_iter: int = 200,
    tol=1e-4,
    kkt_tol=0.0,
    every: int = 10,
    plan: str = "auto",
    batch_size="auto",
) -> RankSweep:
    """``rank_sweep`` on a built ``Problem`` with explicit restart keys (no validation of V)."""
    auto_plan, auto_batch = default_plan()
    if plan == "auto":
        plan = auto_plan if padding_exact(solver) else "loop"
    elif plan == "padded" and not padding_exact(solver):
        raise ValueError(
            f"{type(solver).__name__} depends on the rank beyond its zero padded components, so "
            "the padded plan would change its factors: use plan='loop' (or 'auto')"
        )
    if batch_size == "auto":
        batch_size = auto_batch
    tol = jnp.asarray(tol, problem.dtype)
    kkt_tol = jnp.asarray(kkt_tol, problem.dtype)
    opts = dict(max_iter=max_iter, tol=tol, kkt_tol=kkt_tol, every=every, batch_size=batch_size)
    program = _serial if batch_size == "serial" else _sweep_program
    if plan == "padded":
        sol = program(problem, solver, ranks, keys, init, **opts)
    else:
        r_max = max(ranks)
        per_rank = [
            _pad_rank(
                jax.tree_util.tree_map(
                    lambda x: x[0], program(problem, solver, (r,), keys, init, **opts)
                ),
                r_max,
            )
            for r in ranks
        ]
        arrays = [eqx.partition(s, eqx.is_array)[0] for s in per_rank]
        static = eqx.partition(per_rank[0], eqx.is_array)[1]
        sol = eqx.combine(jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *arrays), static)
    return RankSweep(
        W=sol.W,
        H=sol.H,
        objective=sol.objective,
        n_iter=sol.n_iter,
        status=sol.status,
        history=sol.history,
        ranks=ranks,
        plan=plan,
    )


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
    every: int = 10,
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
        beta, solver, init, max_iter, tol, kkt_tol, key, l1_*, l2_*, weights: as ``jnmf.nmf``;
            ``init`` must be an initializer name.
        every: evaluate the objective and stopping rules every ``every`` iterations
            (10 by default, as scikit-learn; the history has ⌈max_iter/every⌉ entries).
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
    if isinstance(n_restarts, bool) or not isinstance(n_restarts, int) or n_restarts < 1:
        raise ValueError(f"n_restarts must be an integer ≥ 1, got {n_restarts!r}")
    if not (tol >= 0 and kkt_tol >= 0):
        raise ValueError(f"tol and kkt_tol must be ≥ 0, got tol={tol}, kkt_tol={kkt_tol}")
    solver_obj = get_solver(solver)
    solver_obj.check(problem)
    keys = restart_keys(key, n_restarts)
    return sweep_problem(
        problem,
        solver_obj,
        ranks,
        keys,
        init=init,
        max_iter=max_iter,
        tol=tol,
        kkt_tol=kkt_tol,
        every=every,
        plan=plan,
        batch_size=batch_size,
    )


__all__ = ["ComponentMask", "RankSweep", "rank_sweep", "sweep_problem"]
