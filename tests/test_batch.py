"""The one batching layer: restart plans agree, and to what tolerance."""

import numpy as np
import pytest

import jnmf

from .conftest import low_rank


@pytest.mark.parametrize(
    "solver,beta", [("mu", 2.0), ("mu", 1.0), ("anls-bpp", 2.0), ("kl-cd", 1.0), ("optax-pg", 2.0)]
)
def test_batch_plans_agree(rng, solver, beta):
    """Every plan agrees to the tolerance the module docstring states for float64 (batched
    products may sum in another order, so only the sequential plan is reproducible bit for bit
    run to run)."""
    V, _, _ = low_rank(rng, 25, 20, 3, noise=0.05, offset=0.05)
    args = dict(
        beta=beta, solver=solver, n_restarts=4, max_iter=100, tol=0.0, key=0, return_restarts=True
    )
    seq = jnmf.nmf(V, 3, batch_size=1, **args)
    two = jnmf.nmf(V, 3, batch_size=2, **args)
    vec = jnmf.nmf(V, 3, batch_size=None, **args)
    np.testing.assert_allclose(np.asarray(two.objective), np.asarray(seq.objective), rtol=1e-11)
    np.testing.assert_allclose(np.asarray(vec.objective), np.asarray(seq.objective), rtol=1e-11)


def test_one_fit_program_small_and_large_options_agree(rng, monkeypatch):
    """jnmf.nmf's one program: one restart has no batch axis and equals the best of the
    batched call; the small-fit compile options (``jnmf.program``) give the same factors as
    the optimized program."""
    import jnmf.program

    V, _, _ = low_rank(rng, 30, 20, 3, noise=0.05, offset=0.05)
    args = dict(beta=1.0, max_iter=80, tol=0.0, key=5)
    one = jnmf.nmf(V, 3, **args)
    assert one.W.shape == (30, 3) and one.objective.shape == ()
    batched = jnmf.nmf(V, 3, return_restarts=True, **args)
    assert batched.W.shape == (1, 30, 3)
    np.testing.assert_allclose(np.asarray(one.W), np.asarray(batched.W[0]), rtol=1e-12)
    assert V.size * 3 * 80 <= jnmf.program.SMALL_WORK
    monkeypatch.setattr(jnmf.program, "SMALL_WORK", 0)
    optimized = jnmf.nmf(V, 3, **args)
    np.testing.assert_allclose(np.asarray(optimized.W), np.asarray(one.W), rtol=1e-11)
    np.testing.assert_allclose(float(optimized.objective), float(one.objective), rtol=1e-12)
