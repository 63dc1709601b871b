"""The ``kkt`` study: config checks and, on a small problem, the claims (HALS and ANLS reach a
lower KKT residual than MU after the same budget; MU sets no entry exactly to 0)."""

import numpy as np
import pytest

from experiments.studies.kkt import KKTConfig, KKTStudy, summarize, trace_solver
from experiments.study import StudyConfigError


@pytest.fixture(scope="module")
def small_runs():
    rng = np.random.default_rng(0)
    V = rng.uniform(0.1, 1.0, (40, 5)) @ rng.uniform(0.0, 1.0, (5, 30)) ** 3
    V = V + 0.01 * rng.random(V.shape)
    return {s: trace_solver(V, s, 5, 60, 0) for s in ("mu", "hals", "anls-bpp")}


def test_parse_defaults_and_errors():
    study = KKTStudy()
    config = study.parse({})
    assert config == KKTConfig()
    assert len(study.tasks(config)) == 2 * 6
    for bad, words in [
        ({"solvers": ["nope"]}, "solvers"),
        ({"solvers": []}, "solvers"),
        ({"datasets": ["digits"]}, "datasets"),
        ({"rank": 0}, "rank"),
        ({"max_iter": 0}, "max_iter"),
        ({"tol": 1e-3}, "unknown"),
    ]:
        with pytest.raises(StudyConfigError, match=words):
            study.parse(bad)


def test_hals_and_anls_below_mu_after_the_same_budget(small_runs):
    mu = small_runs["mu"]["kkt"][-1]
    for name in ("hals", "anls-bpp"):
        run = small_runs[name]
        assert run["kkt"].shape == (61,) and run["kkt"][0] == 1.0
        assert run["kkt"][-1] < 0.1 * mu, (name, run["kkt"][-1], mu)


def test_mu_has_no_exact_zeros_and_the_others_do(small_runs):
    assert small_runs["mu"]["zeros_W"] + small_runs["mu"]["zeros_H"] == 0
    for name in ("hals", "anls-bpp"):
        assert small_runs[name]["zeros_W"] + small_runs[name]["zeros_H"] > 0


def test_seconds_are_increasing_and_tables_and_figures(small_runs):
    results = {}
    for name, run in small_runs.items():
        assert np.all(np.diff(run["seconds"]) >= 0) and run["seconds"][-1] > 0
        results[name] = {"dataset": "faces", "solver": name, "seed": 0, "shape": [40, 30], **run}
    results["x"] = {"skipped": "reason"}
    rows = summarize(results)
    assert [r["solver"] for r in rows] == ["mu", "hals", "anls-bpp"]
    figures = KKTStudy().figures(results, KKTConfig(datasets=("faces",)))
    assert set(figures) == {"residual", "zeros"}


@pytest.mark.slow
def test_end_to_end_on_reduced_reuters():
    study = KKTStudy()
    config = study.parse(
        {"datasets": ["reuters"], "solvers": ["mu", "hals"], "max_iter": 15, "rank": 5}
    )
    data = study.load(config)
    assert data["reuters"].shape == (4258, 395)
    results = {t.key: study.compute(t, data) for t in study.tasks(config)}
    final = {r["solver"]: r["final_relative_kkt"] for r in summarize(results)}
    assert final["hals"] < final["mu"]
