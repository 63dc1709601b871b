"""The one loop (``jnmf.solve``): scale invariance, start checks, Budget, Status, throw, and
that no other module iterates over solver steps."""

import pathlib
import re
import warnings
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jnmf
from jnmf.solve import Budget, Status

from .conftest import low_rank


@pytest.mark.parametrize("factor", [1e-20, 1e-30, 1e20, 1e30])
@pytest.mark.parametrize("beta", [1.0, 2.0])
def test_results_do_not_depend_on_the_scale_of_V(rng, factor, beta):
    """float32 V scaled by 1e±20, 1e±30: the same relative fit, or a clear error."""
    V, _, _ = low_rank(rng, 40, 30, 4, noise=0.05)
    V = V.astype(np.float32)
    ref = jnmf.nmf(V, 4, beta=beta, max_iter=200, key=0)
    ref_err = np.linalg.norm(V - np.asarray(ref.W @ ref.H)) / np.linalg.norm(V)
    Vs = (V.astype(np.float64) * factor).astype(np.float32)
    size = Vs.size
    log_f = beta * np.log(Vs.max())
    representable = np.log(np.finfo(np.float32).tiny) + np.log(1e3) < log_f and log_f + np.log(
        size
    ) < np.log(np.finfo(np.float32).max) - np.log(16)
    if not representable:
        with pytest.raises(ValueError, match="Rescale V"):
            jnmf.nmf(Vs, 4, beta=beta, max_iter=200, key=0)
        return
    sol = jnmf.nmf(Vs, 4, beta=beta, max_iter=200, key=0)
    WH = np.asarray(sol.W, np.float64) @ np.asarray(sol.H, np.float64)
    V64 = Vs.astype(np.float64)
    err = np.linalg.norm(V64 - WH) / np.linalg.norm(V64)
    assert int(sol.n_iter) == int(ref.n_iter)
    assert sol.status == ref.status
    assert err == pytest.approx(ref_err, rel=1e-3)


def test_scaled_float64_matches_unscaled(rng):
    """A power-of-4 scale of V gives the same factors (scaled) and objective (× s^β)."""
    V, _, _ = low_rank(rng, 20, 15, 3, noise=0.05)
    s = 4.0**10
    c = jnmf.nmf(V * s, 3, beta=1.5, max_iter=100, tol=0.0, key=1)
    d = jnmf.nmf(V, 3, beta=1.5, max_iter=100, tol=0.0, key=1)
    np.testing.assert_allclose(np.asarray(c.W @ c.H) / s, np.asarray(d.W @ d.H), rtol=1e-9)
    np.testing.assert_allclose(float(c.objective), float(d.objective) * s**1.5, rtol=1e-9)


def _problem(rng, beta=2.0):
    V, _, _ = low_rank(rng, 12, 10, 3, offset=0.1)
    return jnmf.make_problem(V, beta)


def test_solve_refuses_negative_zero_and_misshaped_starts(rng):
    p = _problem(rng)
    W, H = np.ones((12, 3)), np.ones((3, 10))
    with pytest.raises(ValueError, match="negative"):
        jnmf.solve(p, jnmf.MultiplicativeUpdate(), (-W, H))
    with pytest.raises(ValueError, match="all zero"):
        jnmf.solve(p, jnmf.MultiplicativeUpdate(), (0 * W, H))
    with pytest.raises(ValueError, match="shapes"):
        jnmf.solve(p, jnmf.MultiplicativeUpdate(), (W[:, :2], H))


def test_solve_runs_the_solver_check(rng):
    p = _problem(rng, beta=1.0)
    f0 = (np.ones((12, 3)), np.ones((3, 10)))
    with pytest.raises(ValueError, match="hals"):
        jnmf.solve(p, jnmf.HALS(), f0)
    pw = jnmf.make_problem(np.asarray(p.V), 2.0, weights=np.ones((12, 10)))
    with pytest.raises(ValueError, match="weights"):
        jnmf.solve(pw, jnmf.ANLSBPP(), f0)


@pytest.mark.parametrize(
    "kwargs", [dict(tol=-1), dict(tol=float("nan")), dict(max_iter=True), dict(every=0)]
)
def test_budget_refuses_bad_values(kwargs):
    with pytest.raises(ValueError):
        Budget(**kwargs)


def test_budget_and_keywords_are_exclusive(rng):
    p = _problem(rng)
    with pytest.raises(ValueError, match="not both"):
        jnmf.solve(p, jnmf.HALS(), (np.ones((12, 3)), np.ones((3, 10))), Budget(), tol=0.1)


def test_tol_means_decrease_per_iteration_whatever_the_cadence(rng):
    """The same tol stops at about the same iteration for every ``every``."""
    p = _problem(rng)
    f0 = jnmf.initialize(jax.random.PRNGKey(0), p, 3, "random")
    its = [
        int(jnmf.solve(p, jnmf.MultiplicativeUpdate(), f0, max_iter=5000, tol=1e-5, every=e).n_iter)
        for e in (1, 5, 20)
    ]
    assert max(its) - min(its) <= 40, its


def test_every_is_identical_to_every_one(rng):
    p = _problem(rng, beta=1.0)
    f0 = jnmf.initialize(jax.random.PRNGKey(0), p, 3, "random")
    a = jnmf.solve(p, jnmf.MultiplicativeUpdate(), f0, max_iter=47, tol=0.0, every=1)
    b = jnmf.solve(p, jnmf.MultiplicativeUpdate(), f0, max_iter=47, tol=0.0, every=10)
    np.testing.assert_array_equal(np.asarray(a.W), np.asarray(b.W))
    assert b.history.objective.shape == (5,)
    assert b.history.iterations()[-1] == 47
    np.testing.assert_allclose(b.history.objective[-1], a.history.objective[-1], rtol=1e-12)


def test_gram_objective_equals_direct(rng):
    """The Gram-form Frobenius evaluation equals the direct one (and falls back near 0)."""
    from jnmf.optimality import _evaluate_direct, evaluate

    V, W, H = low_rank(rng, 30, 20, 3)
    p = jnmf.make_problem(V, 2.0, l1_W=0.1, l2_H=0.2)
    for noise in (0.3, 1e-9):
        f = jnmf.Factors(jnp.asarray(W * (1 + noise)), jnp.asarray(H))
        a, b = evaluate(p, f), _evaluate_direct(p, *f)
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-8)


def test_status_messages_and_throw(rng):
    p = _problem(rng)
    f0 = jnmf.initialize(jax.random.PRNGKey(0), p, 3, "random")
    sol = jnmf.solve(p, jnmf.MultiplicativeUpdate(), f0, max_iter=3, tol=0.0)
    assert bool(sol.status == Status.MAX_ITER)
    assert "max_iter" in sol.message
    bad = jnmf.OptaxProjectedGradient(optimizer=optax.sgd(1e300))
    sol = jnmf.solve(p, bad, f0, max_iter=20, tol=0.0)
    assert bool(sol.status == Status.NONFINITE) and "non-finite" in sol.message
    assert np.isfinite(np.asarray(sol.W)).all()
    with pytest.raises(Exception, match="non-finite"):
        jax.block_until_ready(jnmf.solve(p, bad, f0, max_iter=20, tol=0.0, throw=True).W)


def test_estimator_warns_at_max_iter(rng):
    from sklearn.exceptions import ConvergenceWarning

    V, _, _ = low_rank(rng, 12, 10, 3, noise=0.1)
    with pytest.warns(ConvergenceWarning):
        jnmf.NMF(3, max_iter=5, init="random", random_state=0).fit(V)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        jnmf.NMF(3, max_iter=2000, tol=1e-2, init="random", random_state=0).fit(V)


def test_only_the_loop_module_iterates_over_solver_steps():
    """``while_loop``/``scan``/``fori_loop`` over ``solver.step`` appear only in solve.py."""
    root = pathlib.Path(jnmf.__file__).parent
    for path in root.rglob("*.py"):
        text = path.read_text()
        if path.name == "solve.py":
            continue
        if re.search(r"solver\.step\(", text):
            assert not re.search(r"while_loop|fori_loop|lax\.scan", text), path


def test_implicit_gradient_through_an_unconverged_solve_warns(rng):
    V, W, _ = low_rank(rng, 12, 8, 3)
    W = jnp.asarray(W)

    def loss(W, max_iter):
        return jnp.sum(jnmf.encode(V, W, l1=0.1, max_iter=max_iter, tol=1e-12) ** 2)

    with pytest.warns(RuntimeWarning, match="did not converge"):
        jax.block_until_ready(jax.grad(loss)(W, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        jax.block_until_ready(jax.grad(lambda W: jnp.sum(jnmf.encode(V, W, l1=0.1) ** 2))(W))


class _Frozen(jnmf.solvers.base.AbstractAlternatingSolver):
    """A solver that never moves (what a NaN gradient used to do to projected gradient)."""

    betas: ClassVar = None

    def update_block(self, problem, W, H, state, model):
        return H, state, None


@pytest.mark.parametrize("tol", [0.0, 1e-4])
def test_a_frozen_solver_ends_stalled_not_converged_or_max_iter(rng, tol):
    from jnmf.solve import STALL_ITERATIONS

    V, _, _ = low_rank(rng, 12, 10, 2, noise=0.1)
    start = jnmf.Factors(
        jnp.asarray(rng.uniform(0.1, 1, (12, 2))), jnp.asarray(rng.uniform(0.1, 1, (2, 10)))
    )
    problem = jnmf.make_problem(V, 2.0)
    sol = jnmf.solve(problem, _Frozen(), start, max_iter=100, tol=tol, every=5)
    assert bool(sol.status == Status.STALLED), sol.message
    assert int(sol.n_iter) == STALL_ITERATIONS and "did not change" in sol.message
    # a solver that reaches an exact stationary point is not stalled
    exact = jnmf.solve(problem, jnmf.SOLVERS["anls-bpp"](), start, max_iter=100, tol=0.0, every=5)
    assert bool(exact.status == Status.MAX_ITER), exact.message
