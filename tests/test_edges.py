"""The divergence's edges through the whole stack: β > 2 where WH = 0, zero weights at β < 1."""

import jax.numpy as jnp
import numpy as np
import pytest

import jnmf
from jnmf.solve import Status


def closed_form_gradients(V, W, H, beta, M=None):
    """∇_W, ∇_H of Σ M d_β(V|WH) in NumPy float64, from R = M (WH)^(β−2) (WH − V) where
    M > 0 (0 where M = 0), with the β > 2 limit R = 0 at WH = 0."""
    Y = W @ H
    M = np.ones_like(V) if M is None else M
    with np.errstate(divide="ignore", invalid="ignore"):
        R = np.where(Y > 0, Y ** (beta - 2) * (Y - V), 0.0 if beta > 2 else -np.inf)
    R = np.where(M > 0, M * R, 0.0)
    return R @ H.T, W.T @ R


@pytest.mark.parametrize("beta", [2.5, 3.0])
def test_gradient_is_finite_where_WH_is_zero_for_beta_above_2(beta):
    V = np.array([[1.0, 2.0, 0.5], [0.5, 1.0, 2.0], [1.0, 1.0, 1.0]])
    W = np.array([[1.0, 0.5], [0.0, 0.0], [0.5, 1.0]])  # row 1 of WH is 0, V there > 0
    H = np.array([[1.0, 0.5, 0.2], [0.3, 1.0, 0.5]])
    p = jnmf.make_problem(V, beta)
    g = jnmf.gradients(p, jnmf.Factors(jnp.asarray(W), jnp.asarray(H)))
    gW, gH = closed_form_gradients(V, W, H, beta)
    np.testing.assert_allclose(np.asarray(g.W), gW, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(g.H), gH, rtol=1e-12)
    assert np.isfinite(float(jnmf.kkt_residual(p, jnmf.Factors(W, H))))
    # the traced-β path agrees
    pt = jnmf.make_problem(V, jnp.asarray(beta))
    gt = jnmf.gradients(pt, jnmf.Factors(jnp.asarray(W), jnp.asarray(H)))
    np.testing.assert_allclose(np.asarray(gt.W), gW, rtol=1e-12)


def test_traced_beta_two_edge_is_minus_x():
    from jnmf.divergence import BetaDivergence

    x, y = jnp.array([1.5]), jnp.array([0.0])
    assert float(BetaDivergence(jnp.asarray(2.0)).derivative(x, y)[0]) == -1.5
    assert float(BetaDivergence(2.0).derivative(x, y)[0]) == -1.5


@pytest.mark.parametrize("solver", ["mu", "projected-gradient"])
def test_beta_3_from_a_zero_row_does_not_stall(rng, solver):
    V = rng.uniform(0.5, 1.5, (12, 10))
    W0 = rng.uniform(0.5, 1.0, (12, 3))
    W0[4] = 0.0
    H0 = rng.uniform(0.5, 1.0, (3, 10))
    sol = jnmf.nmf(V, 3, beta=3.0, solver=solver, init=(W0, H0), max_iter=200, tol=0.0)
    assert not bool(sol.status == Status.NONFINITE)
    start = float(jnmf.objective(jnmf.make_problem(V, 3.0), jnmf.Factors(W0, H0)))
    assert float(sol.objective) < 0.5 * start
    assert np.isfinite(np.asarray(sol.history.kkt)).all()


@pytest.mark.parametrize("beta", [0.0, 0.5])
def test_zero_weights_below_beta_1_keep_projected_gradient_moving(rng, beta):
    """0·∞ at a zero weight where WH = 0 once froze projected gradient (NaN gradient)."""
    V = rng.uniform(0.5, 1.5, (15, 12))
    M = (rng.uniform(size=V.shape) > 0.2).astype(float)
    p = jnmf.make_problem(V, beta, weights=M)
    W = rng.uniform(0.5, 1.0, (15, 3))
    H = rng.uniform(0.5, 1.0, (3, 12))
    W[0] = 0.0  # WH = 0 on row 0
    M[0] = 0.0
    p = jnmf.make_problem(V, beta, weights=M)
    g = jnmf.gradients(p, jnmf.Factors(jnp.asarray(W), jnp.asarray(H)))
    assert np.isfinite(np.asarray(g.H)).all()
    sol = jnmf.nmf(
        V,
        3,
        beta=beta,
        weights=M,
        solver="projected-gradient",
        init=(W, H),
        max_iter=300,
        tol=0.0,
        every=1,
    )
    kkt = np.asarray(sol.history.kkt)
    assert np.isfinite(kkt).all()
    assert kkt[-1] < 1e-2 * kkt[0] or kkt[-1] < kkt[40]


def test_mu_beta_above_2_with_penalties_stays_finite(rng):
    V = rng.uniform(0.0, 2.0, (20, 15))
    sol = jnmf.nmf(V, 4, beta=2.5, l1_W=0.1, l2_H=0.2, max_iter=300, tol=0.0, key=3)
    assert bool(sol.status == Status.MAX_ITER)
    assert np.isfinite(np.asarray(sol.W)).all()
