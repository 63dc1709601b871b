"""jnmf.select.stability: component alignment across restarts, stability score.

Expected similarities were computed by the hand-written Hungarian algorithm that SciPy's
``linear_sum_assignment`` replaced.
"""

import numpy as np
import pytest

from jnmf import select
from jnmf.sweep import rank_sweep

# 3 restarts, n = 4, r = 3: restart 1 and 2 hold restart 0's components, permuted and perturbed
WS = np.array(
    [
        [[0.9, 0.1, 0.3], [0.2, 0.8, 0.1], [0.1, 0.3, 0.7], [0.5, 0.2, 0.2]],
        [[0.1, 0.8, 0.3], [0.9, 0.2, 0.2], [0.3, 0.1, 0.6], [0.1, 0.6, 0.3]],
        [[0.2, 0.4, 0.8], [0.1, 0.9, 0.1], [0.8, 0.2, 0.1], [0.2, 0.2, 0.6]],
    ]
)
HS = np.arange(18.0).reshape(3, 3, 2)


def test_align_components_keeps_its_matching():
    Wa, Ha, sims = select.align_components(WS, HS, reference=0)
    np.testing.assert_array_equal(Ha[:, :, 0], [[0, 2, 4], [8, 6, 10], [16, 14, 12]])
    np.testing.assert_array_equal(Wa[1], WS[1][:, [1, 0, 2]])
    expected = [
        [1.0, 1.0, 1.0],
        [0.9911231923051655, 0.9916035457647597, 0.976040278404748],
        [0.9867967802605516, 0.9502907465889072, 0.9879684999551729],
    ]
    np.testing.assert_allclose(sims, expected, rtol=1e-14)
    _, Ha, sims = select.align_components(WS, HS, reference=2)
    np.testing.assert_array_equal(Ha[:, :, 0], [[4, 2, 0], [10, 6, 8], [12, 14, 16]])
    np.testing.assert_allclose(
        sims[1], [0.9528318432402846, 0.9462249282844075, 0.9952736112033697], rtol=1e-14
    )


def test_align_components_undoes_permutations(rng):
    W = rng.uniform(size=(3, 10, 4))
    H = rng.uniform(size=(3, 4, 6))
    W[1:] = W[0]
    H[1:] = H[0]
    perms = [np.arange(4), np.array([2, 0, 3, 1]), np.array([3, 2, 1, 0])]
    Wp = np.stack([W[i][:, p] for i, p in enumerate(perms)])
    Hp = np.stack([H[i][p] for i, p in enumerate(perms)])
    Wa, Ha, sims = select.align_components(Wp, Hp, reference=0)
    np.testing.assert_allclose(Wa, W)
    np.testing.assert_allclose(Ha, H)
    np.testing.assert_allclose(sims, 1.0)


def test_align_components_refuses_bad_shapes():
    with pytest.raises(ValueError, match=r"\(R, n, r\)"):
        select.align_components(WS, HS[:, :2])
    with pytest.raises(ValueError, match="reference"):
        select.align_components(WS, HS, reference=3)


@pytest.fixture(scope="module")
def one_restart_sweep():
    V = np.random.default_rng(1).uniform(0.1, 1.0, (8, 6))
    return rank_sweep(V, 2, n_restarts=1, max_iter=2, key=0)


def test_stability_and_consensus_refuse_a_single_restart(one_restart_sweep):
    with pytest.raises(ValueError, match="stability .* at least 2 .* rank 2 has 1 of 1"):
        select.stability(one_restart_sweep)
    with pytest.raises(ValueError, match="consensus .* at least 2"):
        select.consensus(one_restart_sweep)
