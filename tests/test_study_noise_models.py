"""The ``noise-models`` study: the matching β recovers W best on its own noise model (seeded,
small), the noise draws and the Hungarian-matched correlation, config validation, and (slow)
an end-to-end run."""

import numpy as np
import pytest

from experiments.studies.noise_models import (
    MATCHING_BETA,
    NoiseModelsStudy,
    add_noise,
    ground_truth,
    matched_correlation,
    recovery,
)
from experiments.study import StudyConfigError

SMALL = {"n": 60, "m": 120, "rank": 4, "n_seeds": 2, "n_restarts": 2, "max_iter": 500}


@pytest.mark.parametrize("model, level", [("gaussian", 0.5), ("poisson", 0.5), ("gamma", 1.0)])
def test_matching_beta_wins_on_its_own_noise(model, level):
    config = NoiseModelsStudy().parse(SMALL)
    runs = [recovery(model, level, seed, config) for seed in range(config.n_seeds)]
    correlation = np.array([r["correlation"] for r in runs])  # seeds × β, NaN where skipped
    mean = np.array([c.mean() if np.isfinite(c).all() else np.nan for c in correlation.T])
    betas = list(config.betas)
    winner = betas[int(np.nanargmax(mean))]
    assert winner == MATCHING_BETA[model], dict(zip(betas, mean, strict=True))
    if model == "poisson":  # counts have zeros: β = 0 cannot be fitted, and says why
        assert np.isnan(mean[betas.index(0.0)])
        assert "zero entries" in runs[0]["skip_notes"][0]


def test_matched_correlation_ignores_order_and_scale():
    rng = np.random.default_rng(0)
    W, _, _ = ground_truth(rng, 50, 80, 4)
    shuffled = W[:, [2, 0, 3, 1]] * np.array([3.0, 0.1, 7.0, 1.0])
    assert matched_correlation(W, shuffled) == pytest.approx(1.0, abs=1e-12)
    assert matched_correlation(W, rng.random((50, 4))) < 0.5


def test_noise_draws_have_the_stated_moments():
    rng = np.random.default_rng(1)
    V0 = np.full((400, 500), 2.0)
    gamma, _ = add_noise(rng, V0, "gamma", 0.5, 1e-3)
    assert np.all(gamma > 0)
    assert gamma.mean() == pytest.approx(2.0, rel=0.01)
    assert gamma.std() / gamma.mean() == pytest.approx(0.5, rel=0.02)
    poisson, _ = add_noise(rng, V0, "poisson", 0.5, 1e-3)  # λ = 4 counts per unit
    assert poisson.mean() == pytest.approx(2.0, rel=0.01) and np.any(poisson == 0)
    assert poisson.var() == pytest.approx(2.0 / 4.0, rel=0.02)
    gaussian, clipped = add_noise(rng, V0, "gaussian", 1.0, 1e-3)
    assert gaussian.min() == 1e-3 and clipped == pytest.approx(np.mean(gaussian == 1e-3))
    with pytest.raises(ValueError, match="unknown noise model"):
        add_noise(rng, V0, "laplace", 0.5, 1e-3)


def test_ground_truth_is_positive_with_anchor_columns():
    W, H, V0 = ground_truth(np.random.default_rng(2), 40, 90, 5)
    assert np.all(V0 > 0) and V0.mean() == pytest.approx(1.0)
    np.testing.assert_allclose(W @ H, V0)
    assert np.sum((H > 0).sum(axis=0) == 1) >= 5  # columns with a single topic


@pytest.mark.parametrize(
    "section, message",
    [
        ({"rank": 0}, "rank must be"),
        ({"gamma_levels": [0.0]}, "gamma_levels"),
        ({"poisson_levels": [float("nan")]}, "poisson_levels"),
        ({"betas": []}, "betas"),
        ({"betas": [1.0, 1.0]}, "repeated"),
        ({"gaussian_levels": [], "poisson_levels": [], "gamma_levels": []}, "empty"),
        ({"noise": "laplace"}, "unknown"),
        ({"n": 10, "rank": 11}, "rank must be"),
    ],
)
def test_bad_config_is_refused(section, message):
    with pytest.raises(StudyConfigError, match=message):
        NoiseModelsStudy().parse(section)


@pytest.mark.slow
def test_end_to_end_reduced():
    study = NoiseModelsStudy()
    config = study.parse(
        {
            **SMALL,
            "gaussian_levels": [0.1, 0.5],
            "poisson_levels": [0.5],
            "gamma_levels": [0.3, 1.0],
            "max_iter": 300,
        }
    )
    tasks = study.tasks(config)
    assert len(tasks) == 5 * 2 and len({t.key for t in tasks}) == len(tasks)
    results = {task.key: study.compute(task, None) for task in tasks}
    results["runner_skipped"] = {"skipped": "a task the runner skipped is left out"}
    rows = study.tables(results, config)["noise_models_recovery"]
    assert len(rows) == 5 * 3
    for noise, level in {(row["noise"], row["level"]) for row in rows}:  # one winner per cell
        assert sum(r["best"] for r in rows if (r["noise"], r["level"]) == (noise, level)) == 1
    for row in rows:
        if row["noise"] == "poisson" and row["beta"] == 0.0:
            assert np.isnan(row["mean_correlation"]) and "zero entries" in row["note"]
        else:
            assert 0.3 < row["mean_correlation"] <= 1.0
    assert set(study.figures(results, config)) == {"recovery"}
