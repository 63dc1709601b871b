"""The ``mm-vs-heuristic`` study: config checks, increase counting, and the claim on reduced
sizes (MM monotone at every β tested, the heuristic's increases counted)."""

import numpy as np
import pytest

from experiments.studies.mm_heuristic import (
    MMHeuristicConfig,
    MMHeuristicStudy,
    count_increases,
    summarize,
)
from experiments.study import StudyConfigError

SMALL = {
    "datasets": ["synthetic"],
    "betas": [-0.5, 0.0, 0.5, 1.5, 2.5, 3.0],
    "rank": 3,
    "max_iter": 60,
    "n_seeds": 2,
    "synthetic_n": 30,
    "synthetic_m": 20,
    "synthetic_rank": 3,
}


@pytest.fixture(scope="module")
def small_run():
    study = MMHeuristicStudy()
    config = study.parse(SMALL)
    data = study.load(config)
    results = {task.key: study.compute(task, data) for task in study.tasks(config)}
    return study, config, results


def test_parse_defaults_and_errors():
    study = MMHeuristicStudy()
    config = study.parse({})
    assert config == MMHeuristicConfig()
    assert len(study.tasks(config)) == 2 * 5 * 2
    for bad, words in [
        ({"datasets": ["digits"]}, "datasets"),
        ({"datasets": []}, "datasets"),
        ({"betas": []}, "betas"),
        ({"betas": [float("nan")]}, "betas"),
        ({"max_iter": 0}, "max_iter"),
        ({"rank": 500}, "rank"),
        ({"faces_offset": 0.0}, "faces_offset"),
        ({"exponent": "mm"}, "unknown"),
    ]:
        with pytest.raises(StudyConfigError, match=words):
            study.parse(bad)


def test_count_increases_on_a_known_trace():
    f = np.array([[10.0, 9.0, 9.5, 9.5, 8.0, 8.0 * (1 + 1e-15)]])
    counts = count_increases(f, rounding=1000.0, eps=np.finfo(np.float64).eps)
    assert counts["increases"].tolist() == [1]  # 9 → 9.5; the 1e-15 step is rounding
    assert counts["raw_increases"].tolist() == [2]
    assert counts["largest_increase"][0] == pytest.approx(0.5 / 9.0)
    down = count_increases(np.array([[4.0, 2.0, 1.0]]), 1000.0, 1e-16)
    assert down["increases"][0] == 0 and down["closest_to_increase"][0] == pytest.approx(-0.5)


def test_mm_is_monotone_at_every_beta_and_heuristic_increases_are_counted(small_run):
    _, _, results = small_run
    for key, r in results.items():
        trace = np.asarray(r["objective"])
        assert trace.shape == (2, 61) and np.isfinite(trace).all(), key
        assert not r["nonfinite"].any(), key
        # the stored counts are the recount of the stored trace
        recount = count_increases(trace, 1000.0, np.finfo(np.float64).eps)
        assert r["increases"].tolist() == recount["increases"].tolist()
        assert (trace[:, -1] < trace[:, 0]).all(), key
        if r["exponent"] == "mm":
            steps = np.diff(trace, axis=1)
            assert (steps <= 1000 * np.finfo(np.float64).eps * trace[:, :-1]).all(), key
            assert r["increases"].sum() == 0, key
    rows = {(r["beta"], r["exponent"]): r for r in summarize(results)}
    assert all(rows[(b, "mm")]["increases"] == 0 for b in SMALL["betas"])
    assert all(isinstance(rows[(b, "heuristic")]["increases"], int) for b in SMALL["betas"])


def test_exponents_differ_exactly_where_gamma_is_not_one(small_run):
    _, _, results = small_run
    for beta in SMALL["betas"]:
        mm = results[f"synthetic_beta{beta:g}_mm"]["objective"]
        heuristic = results[f"synthetic_beta{beta:g}_heuristic"]["objective"]
        np.testing.assert_array_equal(mm[:, 0], heuristic[:, 0])  # same starts
        if beta == 1.5:  # γ(1.5) = 1: the two updates are the same update
            np.testing.assert_allclose(mm, heuristic, rtol=1e-12)
        else:
            assert np.abs(mm[:, -1] / heuristic[:, -1] - 1).max() > 1e-3


def test_tables_and_figures(small_run):
    study, config, results = small_run
    tables = study.tables(results, config)
    assert len(tables["mm_vs_heuristic"]) == 12
    figures = study.figures(results, config)
    assert set(figures) == {"objective", "summary"}
    skipped = {**results, "extra": {"skipped": "a reason"}}
    assert len(study.tables(skipped, config)["mm_vs_heuristic"]) == 12


@pytest.mark.slow
def test_end_to_end_on_reduced_faces():
    study = MMHeuristicStudy()
    config = study.parse(
        {
            "datasets": ["faces"],
            "betas": [0.0, 3.0],
            "faces_downsample": 8,
            "max_iter": 40,
            "n_seeds": 1,
            "rank": 5,
        }
    )
    data = study.load(config)
    assert data["faces"].shape == (14 * 11, 400) and data["faces"].min() >= 0.01
    results = {task.key: study.compute(task, data) for task in study.tasks(config)}
    rows = summarize(results)
    assert {r["exponent"] for r in rows} == {"mm", "heuristic"}
    assert all(r["increases"] == 0 for r in rows if r["exponent"] == "mm")
    assert set(study.figures(results, config)) == {"objective", "summary"}
