"""The solver protocol, for every solver in ``jnmf.SOLVERS``: declared capabilities are what
``check`` enforces, steps vmap, monotone solvers never increase the objective, padded sweeps
equal separate solves where the class declares it."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jnmf
from jnmf.batch import ComponentMask

from .conftest import low_rank

NAMES = sorted(jnmf.SOLVERS)


def problem_for(cls, rng, weights=False, penalties=True):
    beta = cls.betas[0] if cls.betas is not None else 1.5
    V, _, _ = low_rank(rng, 14, 11, 3, noise=0.05, offset=0.05)
    pens = dict(l1_H=0.01, l2_W=0.02) if (penalties and cls.penalties) else {}
    M = (rng.uniform(size=V.shape) > 0.1).astype(float) if weights else None
    return jnmf.make_problem(V, beta, weights=M, **pens)


@pytest.mark.parametrize("name", NAMES)
def test_check_enforces_the_declared_capabilities(rng, name):
    cls = jnmf.SOLVERS[name]
    V, _, _ = low_rank(rng, 8, 6, 2, offset=0.1)
    for beta in (0.5, 1.0, 2.0, 3.0):
        p = jnmf.make_problem(V, beta)
        if cls.betas is None or beta in cls.betas:
            cls().check(p)
        else:
            with pytest.raises(ValueError, match="solvers for this problem"):
                cls().check(p)
    beta = 2.0 if cls.betas is None else cls.betas[0]
    pw = jnmf.make_problem(V, beta, weights=np.ones_like(V))
    if cls.weights:
        cls().check(pw)
    else:
        with pytest.raises(ValueError, match="weights"):
            cls().check(pw)
    pp = jnmf.make_problem(V, beta, l1_W=0.1)
    if cls.penalties:
        cls().check(pp)
    else:
        with pytest.raises(ValueError, match="penalties"):
            cls().check(pp)


@pytest.mark.parametrize("name", NAMES)
def test_monotone_where_claimed_and_vmappable(rng, name):
    cls = jnmf.SOLVERS[name]
    p = problem_for(cls, rng, weights=cls.weights)
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    starts = jax.vmap(lambda k: jnmf.initialize(k, p, 3, "random"))(keys)
    budget = jnmf.Budget(max_iter=40, tol=0.0, every=1)
    sols = jax.vmap(lambda f: jnmf.solve(p, cls(), jnmf.Factors(*f), budget))(starts)
    obj = np.asarray(sols.history.objective)
    assert np.isfinite(obj).all()
    first = np.asarray(sols.history.objective0)[:, None]
    trace = np.concatenate([first, obj], axis=1)
    if cls.monotone:
        rises = np.diff(trace, axis=1) / np.abs(trace[:, :-1])
        assert rises.max() <= 1e-12, (name, rises.max())
    one = jnmf.solve(p, cls(), jnmf.Factors(starts[0][0], starts[1][0]), budget)
    np.testing.assert_allclose(np.asarray(one.W), np.asarray(sols.W[0]), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", [n for n in NAMES if jnmf.SOLVERS[n].padding_exact])
def test_padding_exact_solvers_ignore_zero_components(rng, name):
    cls = jnmf.SOLVERS[name]
    p = problem_for(cls, rng, penalties=False)
    W0, H0 = jnmf.initialize(jax.random.PRNGKey(1), p, 3, "random")
    budget = jnmf.Budget(max_iter=15, tol=0.0)
    plain = jnmf.solve(p, cls(), (W0, H0), budget)
    Wp = jnp.pad(W0, ((0, 0), (0, 2)))
    Hp = jnp.pad(H0, ((0, 2), (0, 0)))
    mask = jnp.array([1.0, 1.0, 1.0, 0.0, 0.0])
    padded = jnmf.solve(p, ComponentMask(cls(), mask), (Wp, Hp), budget)
    np.testing.assert_allclose(np.asarray(padded.W[:, :3]), np.asarray(plain.W), rtol=1e-8)
    assert not np.asarray(padded.W[:, 3:]).any()
