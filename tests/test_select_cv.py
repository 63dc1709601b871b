"""jnmf.select.cv: held-out imputation cross-validation."""

import numpy as np
import pytest

from jnmf import select


def test_imputation_cv_picks_the_true_rank():
    """Held-out imputation on a noisy rank-5 matrix (60×40, 10% noise, 30% held out)."""
    rng = np.random.default_rng(0)
    W = rng.uniform(0, 1, (60, 5)) ** 2
    H = rng.uniform(0, 1, (5, 40)) ** 2
    V0 = W @ H
    V = np.abs(V0 + 0.1 * V0.std() * rng.standard_normal(V0.shape))
    cv = select.imputation_cv(
        V,
        range(3, 9),
        n_folds=3,
        fraction=0.3,
        n_restarts=2,
        beta=2.0,
        max_iter=1000,
        tol=1e-6,
        key=0,
    )
    assert cv.heldout.shape == (3, 6) and cv.masks.shape == (3, 60, 40)
    assert 0.2 < cv.masks.mean() < 0.4
    assert cv.best_rank == 5, cv.heldout.mean(axis=0)
    # training error keeps falling with rank while held-out error turns up after 5
    mean = cv.heldout.mean(axis=0)
    assert mean[4] > mean[2] and mean[5] > mean[2]


def test_bad_cv_arguments():
    with pytest.raises(ValueError, match="fraction"):
        select.imputation_cv(np.ones((5, 4)), (2,), fraction=1.5)
    with pytest.raises(ValueError, match="n_folds"):
        select.imputation_cv(np.ones((5, 4)), (2,), n_folds=0)
