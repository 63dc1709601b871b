"""The unmixing study: rank rule, abundance fractions, ARI on labelled pixels, end to end."""

import numpy as np
import pytest

from experiments.studies.unmixing import (
    Scene,
    UnmixingStudy,
    abundance_fractions,
    choose_rank,
    labelled_ari,
)
from experiments.study import StudyConfigError


def synthetic_scene(rng, side=16, n_bands=40, n_classes=4, noise=0.01):
    """Each pixel is 90 % one endmember (its class) and 10 % a random mix of the others;
    one pixel in five is unlabelled (truth 0), as in a real ground-truth map."""
    endmembers = rng.uniform(0.1, 1.0, (n_bands, n_classes))
    classes = rng.integers(0, n_classes, side * side)
    mix = rng.dirichlet(np.ones(n_classes), side * side).T * 0.1
    mix[classes, np.arange(side * side)] += 0.9
    V = endmembers @ mix * rng.uniform(0.5, 1.5, side * side)
    V = np.abs(V + noise * rng.standard_normal(V.shape))
    truth = classes + 1
    truth[rng.random(side * side) < 0.2] = 0
    return Scene(V=V, truth=truth.reshape(side, side), shape=(side, side))


def test_choose_rank_takes_an_interior_minimum_and_falls_back_at_an_edge():
    ranks = [4, 8, 12, 16]
    assert choose_rank(ranks, [[3.0, 1.0, 2.0, 2.5]])[0] == 8
    rank, reason = choose_rank(ranks, [[3.0, 2.0, 1.5, 1.0]], fallback=16)
    assert rank == 16 and "edge" in reason
    assert choose_rank(ranks, [[np.nan, 1.0, 2.0, 3.0]], fallback=5)[0] == 5


def test_abundance_fractions_sum_to_one_and_rebuild_wh(rng):
    W, H = rng.uniform(0, 1, (12, 3)), rng.uniform(0, 1, (3, 20))
    fractions, spectra, totals = abundance_fractions(W, H)
    np.testing.assert_allclose(fractions.sum(axis=0), 1.0, rtol=1e-12)
    np.testing.assert_allclose(spectra.sum(axis=0), 1.0, rtol=1e-12)
    np.testing.assert_allclose(spectra @ fractions * totals, W @ H, rtol=1e-12)
    # a rescaled component gives the same fractions
    scaled = abundance_fractions(W * [1, 10, 0.1], H / np.array([1, 10, 0.1])[:, None])[0]
    np.testing.assert_allclose(scaled, fractions, rtol=1e-10)


def test_ari_ignores_unlabelled_pixels():
    truth = np.array([0, 0, 1, 1, 2, 2, 0])
    labels = np.array([5, 6, 3, 3, 4, 4, 7])  # right on every labelled pixel only
    assert labelled_ari(truth, labels) == 1.0
    with pytest.raises(ValueError, match="no labelled pixel"):
        labelled_ari(np.zeros(4, int), labels[:4])


def test_parse_rejects_bad_sections():
    study = UnmixingStudy()
    with pytest.raises(StudyConfigError, match="unknown keys"):
        study.parse({"rank": 4})
    with pytest.raises(StudyConfigError, match="≥ 3 ranks"):
        study.parse({"candidate_ranks": [4, 8]})
    with pytest.raises(StudyConfigError, match="window"):
        study.parse({"window": [10, 5, 0, 3]})
    with pytest.raises(StudyConfigError, match="cv_fraction"):
        study.parse({"cv_fraction": 1.5})
    assert study.parse({}).compare_ranks == (16,)


def test_ari_beats_chance_on_a_synthetic_scene(rng):
    study = UnmixingStudy()
    config = study.parse({"compare_ranks": [4], "max_iter": 100})
    task = study.tasks(config)[1]
    assert task.key == "rank-4"
    result = study.compute(task, synthetic_scene(rng))
    assert result["ari"] > 0.8
    assert abs(result["ari_chance"]) < 0.05
    assert result["abundances"].shape == (4, 256)
    assert study.tables({"rank-4": result}, config)["summary"][0]["rank"] == 4


@pytest.mark.slow
def test_cv_finds_the_true_count_on_a_synthetic_scene(rng):
    study = UnmixingStudy()
    config = study.parse(
        {"candidate_ranks": [2, 4, 6], "compare_ranks": [], "cv_pixels": 200, "cv_folds": 2}
    )
    (task,) = study.tasks(config)
    result = study.compute(task, synthetic_scene(rng))
    assert result["chosen_rank"] == 4, result["choice"]
    assert result["ari"] > 0.8
    tables = study.tables({"selected": result}, config)
    assert [row["chosen"] for row in tables["cv"]] == [False, True, False]


@pytest.mark.slow
def test_indian_pines_window_end_to_end():
    """An 80×80 window of the real scene (11 classes): every figure drawn, the relative-argmax
    labels' ARI above the chance level (the plain argmax is stored and reported, not tested:
    one bright endmember holds most pixels' largest fraction)."""
    study = UnmixingStudy()
    config = study.parse(
        {
            "window": [20, 100, 0, 80],
            "candidate_ranks": [3, 6, 9],
            "compare_ranks": [4],
            "cv_pixels": 300,
            "cv_folds": 2,
            "cv_max_iter": 100,
            "max_iter": 100,
        }
    )
    scene = study.load(config)
    assert scene.V.shape == (200, 6400) and scene.V.max() == 1.0
    results = {task.key: study.compute(task, scene) for task in study.tasks(config)}
    for result in results.values():
        assert result["ari_relative"] > result["ari_chance"] + 0.05
    names = set(study.figures(results, config))
    assert {"rank_selection", "abundances", "abundances_r4", "labels"} <= names
