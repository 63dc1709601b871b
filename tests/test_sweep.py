"""Rank sweeps: both plans give the factors of separate solves at each rank."""

import equinox as eqx
import jax
import numpy as np
import pytest

import jnmf
from jnmf.batch import restart_keys
from jnmf.init import initialize
from jnmf.problem import make_problem
from jnmf.solve import solve
from jnmf.solvers import MultiplicativeUpdate
from jnmf.sweep import rank_sweep

from .conftest import low_rank

RANKS = (2, 4)
R = 3


@pytest.fixture(scope="module")
def data():
    V, _, _ = low_rank(np.random.default_rng(0), 25, 18, 3, noise=0.05, offset=0.01)
    return V


@pytest.fixture(scope="module")
def separate(data):
    """Every (rank, restart) pair solved on its own, one jitted unbatched solve at a time."""
    problem = make_problem(data, 1.0)
    solver = MultiplicativeUpdate()
    keys = restart_keys(7, R)

    @eqx.filter_jit
    def one(key, rank):
        factors = initialize(key, problem, rank, "random")
        return solve(problem, solver, factors, max_iter=120, tol=0.0, every=10)

    return {r: [one(k, r) for k in keys] for r in RANKS}


@pytest.mark.parametrize("plan, batch_size", [("padded", None), ("loop", 1)])
def test_plans_match_separate_solves(data, separate, plan, batch_size):
    sweep = rank_sweep(
        data,
        RANKS,
        n_restarts=R,
        beta=1.0,
        max_iter=120,
        tol=0.0,
        key=7,
        every=10,
        plan=plan,
        batch_size=batch_size,
    )
    assert sweep.plan == plan and sweep.ranks == RANKS
    assert sweep.W.shape == (2, R, 25, 4) and sweep.H.shape == (2, R, 4, 18)
    assert sweep.objectives.shape == (2, R)
    for r in RANKS:
        sols = sweep.restarts(r)
        assert sols.W.shape == (R, 25, r)
        for i, ref in enumerate(separate[r]):
            np.testing.assert_allclose(sols.W[i], ref.W, rtol=1e-10, atol=1e-13)
            np.testing.assert_allclose(sols.H[i], ref.H, rtol=1e-10, atol=1e-13)
            np.testing.assert_allclose(sols.objective[i], ref.objective, rtol=1e-10)
            np.testing.assert_allclose(sols.history.objective[i], ref.history.objective, rtol=1e-10)
            np.testing.assert_allclose(sols.history.kkt[i], ref.history.kkt, rtol=1e-8)
            assert int(sols.n_iter[i]) == int(ref.n_iter)
        best = sweep.best(r)
        objs = np.array([float(s.objective) for s in separate[r]])
        np.testing.assert_allclose(best.objective, objs.min(), rtol=1e-10)
        assert best.objective.shape == ()
    # padded components are exactly zero, never NaN
    assert np.all(np.asarray(sweep.W[0, :, :, 2:]) == 0.0)
    assert np.all(np.asarray(sweep.H[0, :, 2:, :]) == 0.0)


def test_masked_penalized_sweep_matches_nmf(rng):
    """With missing entries (NaN, weight 0), L1/L2 penalties and β = 1.5, padded = nmf."""
    V, _, _ = low_rank(rng, 15, 12, 2, noise=0.05, offset=0.05)
    M = (rng.uniform(size=V.shape) > 0.2).astype(float)
    V = np.where(M > 0, V, np.nan)
    kw = dict(beta=1.5, l1_H=0.01, l2_W=0.05, weights=M, max_iter=60, tol=0.0, key=3)
    sweep = rank_sweep(V, (1, 3), n_restarts=2, every=1, plan="padded", batch_size=None, **kw)
    for r in (1, 3):
        ref = jnmf.nmf(V, r, n_restarts=2, **kw)
        refs = jnmf.nmf(V, r, n_restarts=2, return_restarts=True, **kw)
        best = sweep.best(r)
        np.testing.assert_allclose(best.W, ref.W, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(best.H, ref.H, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(sweep.restarts(r).objective, refs.objective, rtol=1e-10)
    assert np.isfinite(np.asarray(sweep.objective)).all()


def test_padded_plan_refuses_rank_dependent_solvers():
    with pytest.raises(ValueError, match="plan='loop'"):
        rank_sweep(np.ones((4, 3)), (1, 2), solver="accelerated-hals", plan="padded")


def test_auto_plan_follows_backend():
    from jnmf.sweep import default_plan

    plan, batch = default_plan()
    if jax.default_backend() == "cpu":
        assert (plan, batch) == ("loop", 1)
    else:
        assert (plan, batch) == ("padded", None)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(ranks=()), "empty"),
        (dict(ranks=(2, 2)), "distinct"),
        (dict(ranks=(0, 2)), "≥ 1"),
        (dict(ranks=(2,), plan="fast"), "unknown plan"),
        (dict(ranks=(2,), batch_size=0), "batch_size"),
        (dict(ranks=(2,), n_restarts=0), "n_restarts"),
        (dict(ranks=(2,), init=(np.ones((4, 2)), np.ones((2, 3)))), "initializer name"),
        (dict(ranks=(9,), init="nndsvd"), "rank ≤ min"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        rank_sweep(np.ones((4, 3)), **kwargs)
