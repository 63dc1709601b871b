"""The ``parts`` study: preprocessing, measures, config checks, and its claim on reduced faces."""

from __future__ import annotations

import json

import numpy as np
import pytest

from experiments.studies import _faces
from experiments.studies.parts import METHODS, PartsConfig, PartsStudy
from experiments.study import StudyConfigError


def test_preprocessing_gives_mean_and_std_a_quarter_before_clipping():
    signs = np.tile([-1.0, 1.0], 50)[:, None]
    V = np.array([10.0, 200.0, 3.0]) + np.array([1.0, 40.0, 0.5]) * signs  # z = ±1
    X = _faces.lee_seung_preprocess(V)
    np.testing.assert_allclose(X, np.where(signs < 0, 0.0, 0.5) * np.ones(3), atol=1e-12)
    rng = np.random.default_rng(0)
    spread = rng.normal(size=(500, 3))
    spread[0] = 50.0  # an outlier far above mean + 3 std
    wide = _faces.lee_seung_preprocess(spread)
    assert wide.min() >= 0.0 and wide.max() <= 1.0
    assert np.any(wide == 0.0) and np.any(wide == 1.0)  # z < −1 and z > 3 were clipped


def test_preprocessing_refuses_a_constant_image():
    V = np.ones((10, 3))
    V[:, 1] = np.arange(10)
    with pytest.raises(ValueError, match=r"column\(s\) \[0, 2\] are constant"):
        _faces.lee_seung_preprocess(V)


def test_block_mean_and_unit_columns_and_near_zero():
    V = np.arange(24.0).reshape(24, 1)  # one 4×6 image
    small, shape = _faces.block_mean(V, (4, 6), 2)
    assert shape == (2, 3)
    np.testing.assert_allclose(small[:, 0], [3.5, 5.5, 7.5, 15.5, 17.5, 19.5])
    rng = np.random.default_rng(1)
    B, E = rng.random((20, 3)), rng.random((3, 7))
    B1, E1 = _faces.unit_columns(B, E)
    np.testing.assert_allclose(B1 @ E1, B @ E)
    np.testing.assert_allclose(np.linalg.norm(B1, axis=0), 1.0)
    column = np.array([[1.0], [0.01], [0.02], [0.5]])
    assert _faces.near_zero_fraction(column, 0.01)[0] == pytest.approx(0.25)


@pytest.mark.parametrize(
    "section, message",
    [
        ({"rnak": 4}, "unknown"),
        ({"rank": 0}, "rank must be ≥ 1"),
        ({"rank": 401}, "≤ 400"),
        ({"rank": 4.5}, "integer"),
        ({"zero_threshold": 0.0}, "zero_threshold"),
        ({"beta": float("nan")}, "beta"),
        ({"solver": "sparse-hoyer"}, "solver must be one of"),
        ({"example_face": 400}, "example_face"),
    ],
)
def test_parse_rejects_bad_sections(section, message):
    with pytest.raises(StudyConfigError, match=message):
        PartsStudy().parse(section)


def test_tasks_carry_a_json_config():
    study = PartsStudy()
    config = study.parse({"rank": 9})
    tasks = study.tasks(config)
    assert [t.key for t in tasks] == list(METHODS)
    assert json.loads(json.dumps(dict(tasks[0].params)))["rank"] == 9


@pytest.fixture(scope="module")
def reduced_results():
    """All three methods on the 400 faces at 14×11 pixels (8×8 block means), rank 9."""
    study = PartsStudy()
    config = study.parse({"rank": 9, "downsample": 8, "max_iter": 100, "vq_restarts": 2})
    faces = study.load(config)
    return config, {m: study.compute_method(m, faces, config) for m in METHODS}


def test_nmf_basis_is_sparser_than_pca_and_vq(reduced_results):
    _, results = reduced_results
    nmf = results["nmf"]["mean_basis_sparseness"]
    # measured 0.417 against PCA 0.242 and VQ 0.181
    assert nmf > results["pca"]["mean_basis_sparseness"] + 0.1
    assert nmf > results["vq"]["mean_basis_sparseness"] + 0.1
    assert results["nmf"]["mean_near_zero_fraction"] > results["pca"]["mean_near_zero_fraction"]
    np.testing.assert_allclose(results["vq"]["encoding_sparseness"], 1.0)  # one-hot codes
    for r in results.values():
        assert 0.0 < r["relative_error"] < 1.0
        assert r["basis"].shape == (14 * 11, 9) and r["encodings"].shape == (9, 400)


def test_tables_and_figures_from_results(reduced_results):
    config, results = reduced_results
    study = PartsStudy()
    (rows,) = study.tables(results, config).values()
    assert [row["method"] for row in rows] == list(METHODS)
    figures = study.figures(results, config)
    assert set(figures) == {"bases", "measures", "encoding"}
    assert "NMF basis sparsest" in figures["bases"]._suptitle.get_text()


@pytest.mark.slow
def test_parts_end_to_end_through_the_runner(tmp_path):
    from experiments.cli import run_main

    path = tmp_path / "parts.toml"
    path.write_text(
        'name = "parts"\n[run]\nprecision = "float64"\n'
        f'out = "{tmp_path / "results"}"\n'
        "[study]\nrank = 16\ndownsample = 4\nmax_iter = 200\n"
    )
    assert run_main([str(path), "--quiet", "--figures-out", str(tmp_path / "figs")]) == 0
    for name in ("bases", "measures", "encoding"):
        assert (tmp_path / "figs" / f"parts_{name}.png").stat().st_size > 10_000
    (table,) = (tmp_path / "results").glob("parts-*/tables/parts_summary.json")
    rows = {row["method"]: row for row in json.loads(table.read_text())}
    assert rows["nmf"]["mean_basis_sparseness"] > max(
        rows["pca"]["mean_basis_sparseness"], rows["vq"]["mean_basis_sparseness"]
    )
    assert PartsConfig().rank == 49
