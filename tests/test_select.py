"""Rank selection end to end: error curve, consensus and stability on sweeps with a known rank.

Unit tests of each module are in test_select_consensus.py, test_select_stability.py and
test_select_cv.py.
"""

import numpy as np
import pytest

from jnmf import select
from jnmf.sweep import rank_sweep


@pytest.fixture(scope="module")
def planted_sweep():
    """30 samples in 3 planted groups; KL sweep at ranks 2, 3, 5."""
    rng = np.random.default_rng(3)
    groups = np.repeat(np.arange(3), 10)
    W = rng.uniform(0.0, 1.0, (40, 3)) ** 3
    H = 0.05 + np.eye(3)[groups].T * rng.uniform(1.0, 2.0, 30)
    V = rng.poisson(50 * W @ H).astype(float) + 0.5
    sweep = rank_sweep(V, (2, 3, 5), n_restarts=8, beta=1.0, max_iter=300, tol=1e-6, key=1)
    return V, groups, sweep


def test_consensus_and_stability_find_planted_rank(planted_sweep):
    V, groups, sweep = planted_sweep
    curve = select.error_curve(sweep)
    np.testing.assert_allclose(curve.best, np.min(np.asarray(sweep.objective), axis=1))
    assert np.all(curve.best <= curve.median) and np.all(curve.median <= curve.worst)
    assert curve.best[1] < 0.5 * curve.best[0]  # the elbow: rank 3 explains far more than 2
    cons = select.consensus(sweep)
    assert cons.matrices.shape == (3, 30, 30)
    assert cons.cophenetic[1] > 0.99 and cons.dispersion[1] > 0.99
    assert cons.cophenetic[1] > cons.cophenetic[2]
    labels = select.consensus_clusters(cons.matrices[1], 3)
    assert select.cluster_accuracy(labels, groups) == 1.0
    stab = select.stability(sweep)
    assert stab.score[1] > 0.99 and stab.score[1] > stab.score[2]
    Wc, Hc = stab.W[3], stab.H[3]
    assert Wc.shape == (40, 3) and Hc.shape == (3, 30)
    np.testing.assert_allclose(Wc.sum(axis=0), 1.0)
    assert select.cluster_accuracy(select.cluster_labels(Hc), groups) == 1.0


def _all_aml():
    from jnmf.data import load_all_aml

    ds = load_all_aml()
    return ds.V, np.asarray(ds.meta["labels"]), ds.meta["subtypes"]


@pytest.mark.slow
def test_brunet_all_aml():
    """Brunet et al. (PNAS 2004), ALL/AML, KL-NMF, k = 2…5, 50 restarts, one padded program.

    Brunet et al.: cophenetic correlation high at k = 2 and 3, lower at k = 4 and 5; k = 2
    separates ALL from AML, k = 3 also splits ALL into B and T.
    Here (float32, ≤ 500 iterations, tol 1e-5 every 10, key 0; about 1.5 min on 2 cores):
    cophenetic 0.99995, 0.9952, 0.9857, 0.9866 at k = 2…5; ALL/AML accuracy of the best
    fit's argmax labels at k = 2: 36/38 = 0.947; at k = 3 against B-ALL/T-ALL/AML: 0.947.
    """
    V, labels, subtypes = _all_aml()
    sweep = rank_sweep(
        V.astype(np.float32),
        range(2, 6),
        n_restarts=50,
        beta="kullback-leibler",
        max_iter=500,
        tol=1e-5,
        key=0,
        plan="padded",
    )
    assert sweep.plan == "padded"
    cons = select.consensus(sweep)
    coph = dict(zip(sweep.ranks, cons.cophenetic, strict=True))
    print("cophenetic by k:", coph, "dispersion:", cons.dispersion)
    assert min(coph[2], coph[3]) > max(coph[4], coph[5])
    assert coph[2] > 0.99
    acc2 = select.cluster_accuracy(select.cluster_labels(sweep.best(2).H), labels)
    acc2_consensus = select.cluster_accuracy(select.consensus_clusters(cons.matrices[0], 2), labels)
    sub = np.where(labels == 1, "AML", np.asarray(subtypes))
    acc3 = select.cluster_accuracy(select.cluster_labels(sweep.best(3).H), sub)
    print(f"ALL/AML accuracy k=2: {acc2:.3f} (consensus {acc2_consensus:.3f}); k=3: {acc3:.3f}")
    assert acc2 >= 0.9 and acc2_consensus >= 0.9
    assert acc3 >= 0.85
