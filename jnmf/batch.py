"""The one batching layer: many solves of one problem in one compiled program.

``solve_batch(problem, solver, starts, budget, masks=, weights=, batch_size=)`` runs one
``solve`` per leading index of the starting factors — restarts (starts from different keys),
rank sweeps (ranks padded to r_max with a 0/1 component mask: padded columns of W and rows of
H stay exactly zero) and cross-validation folds (one weight matrix per fold) are all calls of
it — and returns a batched ``Solution``.  ``best_of`` picks the best of a batch.

How the solves inside one program are batched is ``batch_size``: ``None`` vmaps all of them
(the plan for accelerators); an integer b runs them b at a time with ``lax.map`` (b = 1: one
after another).  On XLA's CPU backend a ``vmap`` over restarts ran 0.4–0.8× the speed of a
Python loop (batched skinny products), while ``lax.map`` keeps each solve's working set hot,
so "auto" means 1 on CPU and None elsewhere.  Every plan gives the same factors up to the
rounding of batched products: XLA may reorder a batched matrix product's sums, so the plans
agree to 1e-11 relative in float64 after 100 iterations (``tests/test_batch.py``; measured
≤ 2e-14) and to about 1e-6 in float32 (the issue measured 3e-7); only the same plan is
reproducible bit for bit.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from jnmf.init import initialize
from jnmf.problem import Factors, Problem
from jnmf.program import Program, solve_work
from jnmf.shard import Layout
from jnmf.solve import Budget, Solution, solve
from jnmf.solvers.base import AbstractSolver
from jnmf.solvers.mu import MultiplicativeUpdate


def restart_keys(key, n_restarts: int) -> Array:
    """``n_restarts`` independent keys from an int seed or a PRNG key."""
    from jnmf.checks import check_key

    return jax.random.split(check_key(key), n_restarts)


def default_batch_size() -> int | None:
    """1 (sequential ``lax.map``) on CPU, None (full ``vmap``) on accelerators."""
    return 1 if jax.default_backend() == "cpu" else None


def resolve_batch_size(batch_size) -> int | None:
    """Validate ``batch_size`` ("auto", None or an integer ≥ 1) and resolve "auto"."""
    if batch_size == "auto":
        return default_batch_size()
    if batch_size is None:
        return None
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be 'auto', None or an integer ≥ 1, got {batch_size!r}")
    return batch_size


def map_batched(fn, xs, batch_size: int | None):
    """``vmap(fn)(xs)`` when ``batch_size`` is None, else ``lax.map`` ``batch_size`` at a time."""
    if batch_size is None:
        return jax.vmap(fn)(xs)
    if batch_size == 1:
        return jax.lax.map(fn, xs)
    return jax.lax.map(fn, xs, batch_size=batch_size)


class ComponentMask(AbstractSolver):
    """Wrap a solver so that components with ``mask[k] == 0`` stay exactly zero.

    After each inner step, W[:, k] and H[k, :] are replaced by 0 where ``mask[k] == 0``
    (with ``jnp.where``, so even a NaN there cannot leak).  With zero-initialized padded
    components the active components follow exactly the iterates of the unpadded solve when
    the inner solver declares ``padding_exact``.
    """

    solver: AbstractSolver
    mask: Array

    @property
    def name(self) -> str:
        return self.solver.name

    @property
    def free(self) -> tuple[bool, bool]:
        return self.solver.free

    @property
    def scale_equivariant(self) -> bool:
        return type(self.solver).scale_equivariant

    def check(self, problem: Problem) -> None:
        self.solver.check(problem)

    def init(self, problem: Problem, factors: Factors):
        return self.solver.init(problem, factors)

    def step(self, problem: Problem, factors: Factors, state):
        (W, H), state = self.solver.step(problem, factors, state)
        keep = self.mask > 0
        return Factors(jnp.where(keep[None, :], W, 0.0), jnp.where(keep[:, None], H, 0.0)), state


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


def solve_batch(
    problem: Problem,
    solver: AbstractSolver,
    starts: Factors,
    budget: Budget,
    *,
    masks: Array | None = None,
    weights: Array | None = None,
    batch_size: int | None = None,
) -> Solution:
    """One ``solve`` per leading index of ``starts`` (W0: (B, n, r), H0: (B, r, m)).

    ``masks`` (B, r): component masks of padded ranks (0 = padded, kept at zero);
    ``weights`` (B, n, m): one entry-weight matrix per solve (cross-validation folds).
    Returns the batched ``Solution`` (leading axis B).
    """
    wrap = masks is not None and not zero_safe(solver)

    def one(args):
        W0, H0, mask, w = args
        prob = problem if w is None else problem.replace(weights=w, weights_T=None, V_T=None)
        solver_ = ComponentMask(solver, mask) if wrap else solver
        return solve(prob, solver_, Factors(W0, H0), budget)

    return map_batched(one, (starts.W, starts.H, masks, weights), batch_size)


def starts_from_keys(problem: Problem, keys: Array, init, rank: int) -> Factors:
    """Starting factors per key: ``initialize(key, problem, rank, init)`` or fixed ``Factors``
    repeated, stacked along a leading axis."""
    if isinstance(init, Factors):
        return jax.tree_util.tree_map(
            lambda x: jnp.broadcast_to(x, (keys.shape[0],) + x.shape), init
        )
    return jax.vmap(lambda k: initialize(k, problem, rank, init))(keys)


@eqx.filter_jit
def best_of(solutions: Solution) -> Solution:
    """The restart with the smallest final objective (NaN counts as +inf) of a batched
    ``Solution`` with one leading restart axis."""
    return _best(solutions, by_mask=False)


def _best(solutions: Solution, by_mask: bool) -> Solution:
    """``best_of``; ``by_mask=True`` picks by a sum over the restart axis of the leaves
    zeroed except at the best (exact: the other terms are exact zeros, ``where`` first),
    which XLA partitions as one all-reduce per leaf when restarts are split over devices,
    where indexing gathers every restart's factors onto every device."""
    objectives = solutions.objective
    best = jnp.argmin(jnp.where(jnp.isnan(objectives), jnp.inf, objectives))
    arrays, static = eqx.partition(solutions, eqx.is_array)

    def pick(x):
        if not by_mask:
            return x[best]
        chosen = (jnp.arange(x.shape[0]) == best).reshape((-1,) + (1,) * (x.ndim - 1))
        return jnp.sum(jnp.where(chosen, x, jnp.zeros((), x.dtype)), axis=0, dtype=x.dtype)

    return eqx.combine(jax.tree_util.tree_map(pick, arrays), static)


# ------------------------------------------------------------------------------ one fit


def _fit(problem, solver, keys, init, rank, budget, batch_size, every_restart, layout):
    if keys.shape[0] == 1 and not every_restart:  # one restart: no batch axis at all
        start = init if isinstance(init, Factors) else initialize(keys[0], problem, rank, init)
        if layout is not None:
            start = layout.constrain(start, batched=False)
        return solve(problem, solver, start, budget)
    starts = starts_from_keys(problem, keys, init, rank)
    if layout is not None:
        starts = layout.constrain(starts, batched=True)
    solutions = solve_batch(problem, solver, starts, budget, batch_size=batch_size)
    if every_restart:
        return solutions
    return _best(solutions, by_mask=layout is not None and layout.size("restarts") > 1)


def _fit_work(problem, solver, keys, init, rank, budget, *_) -> int:
    return solve_work(problem.shape, rank, budget.max_iter, keys.shape[0])


_FIT = Program(_fit, _fit_work)


def fit(
    problem: Problem,
    solver: AbstractSolver,
    keys: Array,
    init: str | Factors,
    rank: int,
    budget: Budget,
    batch_size: int | None = None,
    every_restart: bool = False,
    layout: Layout | None = None,
) -> Solution:
    """``jnmf.nmf``'s one compiled program: starts from ``keys``, the solves and the choice of
    the best (or every restart, ``every_restart=True``, as a batched ``Solution``).

    One restart runs ``solve`` alone, with no batch axis.  Fits whose work n·m·r·max_iter·
    restarts is at most ``jnmf.program.SMALL_WORK`` compile with options that compile fast
    (``jnmf.program``).

    ``layout`` (``jnmf.shard.Layout``) spreads the fit over a device mesh: V and the weights
    are split as it says, every other array is replicated, and the starting factors are
    constrained to its factor layout; XLA partitions the rest of the program
    (``jnmf.shard``).  The layout is part of the compiled program's key.
    """
    return _FIT(
        *_arguments(problem, solver, keys, init, rank, budget, batch_size, every_restart, layout)
    )


def lower_fit(*args, **kwargs) -> jax.stages.Lowered:
    """The lowered program that ``fit`` with the same arguments runs (``.compile()`` it, then
    read ``.as_text()`` or ``.memory_analysis()``)."""
    return _FIT.lower(*_arguments(*args, **kwargs))


def _arguments(
    problem, solver, keys, init, rank, budget, batch_size=None, every_restart=False, layout=None
):
    """``_fit``'s arguments, placed on the layout's mesh when there is one."""
    if layout is not None:
        problem = layout.place_problem(problem)
        solver, keys, init, budget = layout.replicate((solver, keys, init, budget))
    return problem, solver, keys, init, rank, budget, batch_size, every_restart, layout


def solve_restarts(
    problem: Problem,
    solver: AbstractSolver,
    keys: Array,
    init: str | Factors,
    rank: int,
    budget: Budget,
    batch_size: int | None = None,
    layout: Layout | None = None,
) -> Solution:
    """One solve per key in one compiled program; returns the batched ``Solution``
    (over ``layout``'s mesh when given: ``jnmf.shard.layout_for``)."""
    return fit(problem, solver, keys, init, rank, budget, batch_size, True, layout)
