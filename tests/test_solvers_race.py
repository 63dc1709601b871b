"""The race-driven pieces of the solvers: ``pick_solver``, kl-cd's column blocks (same
iterates as one block) and kl-dna's reuse of W H_N as the model."""

import jax.numpy as jnp
import numpy as np
import pytest

import jnmf
from jnmf.problem import Factors, make_problem, objective
from jnmf.solvers.auto import pick_solver
from jnmf.solvers.kl_cd import KLCoordinateDescent, column_block
from jnmf.solvers.kl_dna import _update_H

from .conftest import low_rank


def _poisson(rng, n, m, r, mean=5.0):
    L = rng.gamma(1.0, 1.0, (n, r)) @ rng.gamma(1.0, 1.0, (r, m))
    return rng.poisson(L * mean / L.mean()).astype(float)


@pytest.mark.parametrize(
    ("beta", "weights", "expected"),
    [
        (2.0, False, "accelerated-hals"),
        (2.0, True, "hals"),
        (1.0, False, "kl-dna"),
        (1.0, True, "kl-dna"),
        (0.0, False, "mu"),
        (0.5, True, "mu"),
        (1.5, False, "mu"),
    ],
)
def test_pick_solver_follows_the_race_table_and_supports_the_problem(rng, beta, weights, expected):
    V, _, _ = low_rank(rng, 9, 7, 2, offset=0.1)
    M = np.ones_like(V) if weights else None
    problem = make_problem(V, beta, weights=M, l1_H=0.1)
    name = pick_solver(problem)
    assert name == expected
    assert jnmf.SOLVERS[name].supports(problem) is None


def test_column_block_sizes():
    assert column_block(2000, 1000, 4) == 65
    assert column_block(10, 7, 8) == 7  # never more than m
    assert column_block(10**6, 100, 8) == 8  # at least 8


@pytest.mark.parametrize("weighted", [False, True])
def test_kl_cd_blocks_give_the_iterates_of_one_block(rng, weighted):
    """Columns of H are independent given W: any block size (with a ragged tail) gives the
    same iterates as sweeping each row over all columns."""
    V = _poisson(rng, 13, 11, 3)
    M = (rng.uniform(size=V.shape) > 0.2).astype(float) if weighted else None
    problem = make_problem(V, 1.0, weights=M, l1_H=0.05, l2_W=0.1)
    W0, H0 = jnmf.initialize(jnp.asarray([0, 3], jnp.uint32), problem, 3, "random")
    whole = jnmf.solve(problem, KLCoordinateDescent(block=11), (W0, H0), max_iter=6, tol=0.0)
    for block in (1, 4, 5):
        parts = jnmf.solve(problem, KLCoordinateDescent(block=block), (W0, H0), max_iter=6,
                           tol=0.0)  # fmt: skip
        np.testing.assert_allclose(parts.W, whole.W, rtol=1e-11, atol=1e-13)
        np.testing.assert_allclose(parts.H, whole.H, rtol=1e-11, atol=1e-13)
    assert float(objective(problem, Factors(whole.W, whole.H))) < float(
        objective(problem, Factors(W0, H0))
    )


def test_kl_dna_model_is_w_times_the_new_h(rng):
    """Whether every column takes Newton (W H_N reused) or not (product formed)."""
    V = _poisson(rng, 12, 9, 3)
    problem = make_problem(V, 1.0)
    W = jnp.asarray(rng.uniform(0.2, 1.0, (12, 3)))
    for H in (jnp.asarray(rng.uniform(0.2, 1.0, (3, 9))), jnp.full((3, 9), 1e-3)):
        H_new, Y = _update_H(problem, W, H, W @ H)
        np.testing.assert_allclose(Y, W @ H_new, rtol=1e-12, atol=1e-14)


def test_kl_cd_reaches_the_objective_of_mu(rng):
    """float64, run to convergence from one start: the same objective to 1e-8."""
    V = _poisson(rng, 12, 10, 2, mean=20.0)
    problem = make_problem(V, 1.0)
    start = jnmf.initialize(jnp.asarray([0, 5], jnp.uint32), problem, 2, "nndsvda")
    budget = dict(tol=0.0, every=100)
    mu = jnmf.solve(problem, jnmf.SOLVERS["mu"](), start, max_iter=20000, **budget)
    cd = jnmf.solve(problem, KLCoordinateDescent(block=3), start, max_iter=3000, **budget)
    f_mu = float(objective(problem, Factors(mu.W, mu.H)))
    f_cd = float(objective(problem, Factors(cd.W, cd.H)))
    assert abs(f_cd - f_mu) <= 1e-8 * f_mu, (f_cd, f_mu)
