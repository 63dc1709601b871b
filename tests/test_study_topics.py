"""The ``topics`` study: the PLSA identity (to 1e-8 relative on several factorizations), its
helpers (TF-IDF, perplexity), config validation, and (slow) an end-to-end run on reduced
Reuters."""

import numpy as np
import pytest

import jnmf
from experiments.studies.topics import (
    TopicsStudy,
    kl_divergence,
    perplexity,
    plsa_check,
    plsa_constant,
    plsa_log_likelihood,
    plsa_parameters,
    tfidf,
)
from experiments.study import StudyConfigError


@pytest.fixture(scope="module")
def counts():
    """Reduced Reuters: the 300 most frequent words of the first 60 documents (has zeros)."""
    V = jnmf.data.load_reuters().V[:, :60]
    V = V[np.argsort(-V.sum(axis=1))[:300]]
    assert np.all(V.sum(axis=0) > 0) and np.mean(V == 0) > 0.5
    return V


def direct_log_likelihood(V, W, H):
    """L = Σ V_wd log P(w,d) with P(w|z) and P(z,d) built entry by entry (no shortcut)."""
    column_sums = W.sum(axis=0)
    word_given_topic = W / column_sums
    topic_document = column_sums[:, None] * H
    topic_document = topic_document / topic_document.sum()
    total = 0.0
    for w, d in zip(*np.nonzero(V), strict=True):
        joint = sum(word_given_topic[w, z] * topic_document[z, d] for z in range(W.shape[1]))
        total += V[w, d] * np.log(joint)
    return total


def factorizations(V):
    """Several different factorizations: random ones, KL-MU fits, a perturbed KL-MU fit."""
    rng = np.random.default_rng(1)
    cases = []
    for rank in (2, 5, 9):
        cases.append(("random", rng.uniform(0.01, 2.0, (V.shape[0], rank)), rng.random((rank, 60))))
    for seed in (0, 1, 2):  # one compiled program, three starts
        solution = jnmf.nmf(V, 6, beta=1.0, solver="mu", max_iter=30, tol=0.0, key=seed)
        cases.append(("kl-mu", np.asarray(solution.W), np.asarray(solution.H)))
    W, H = cases[-1][1], cases[-1][2]
    cases.append(("perturbed", W * rng.uniform(0.5, 1.5, W.shape), H))
    return cases


def test_plsa_identity_on_several_factorizations(counts):
    V = counts
    N, constant = V.sum(), plsa_constant(V)
    assert constant == pytest.approx(np.sum(V[V > 0] * np.log(V[V > 0] / N)), rel=1e-12)
    cases = factorizations(V)
    likelihoods = []
    for kind, W, H in cases:
        check = plsa_check(V, W, H)
        # L = −D_KL(V‖W̄H̄) + C(V): the identity after normalization, any factors
        assert check["relative_error"] < 1e-8, kind
        assert check["log_likelihood"] == pytest.approx(direct_log_likelihood(V, W, H), rel=1e-10)
        # the factors as given: D_KL(V‖WH) = D_KL(V‖W̄H̄) + S − N − N log(S/N)
        given = -check["kl_given"] + constant + check["scale_gap"]
        assert abs(given - check["log_likelihood"]) <= 1e-8 * abs(check["log_likelihood"])
        if kind == "kl-mu":  # the last H-update makes Σ WH = Σ V: the gap vanishes
            assert abs(check["scale_gap"]) <= 1e-8 * abs(check["log_likelihood"])
            assert abs(check["mass_ratio"] - 1.0) < 1e-10
        else:  # S ≠ N: the gap S − N − N log(S/N) is positive
            assert check["scale_gap"] > 0
        if kind == "random":
            assert check["scale_gap"] > 1e-3 * abs(check["log_likelihood"])
        likelihoods.append(check["log_likelihood"])
    assert len(set(np.round(likelihoods, 6))) == len(cases)  # really different factorizations


def test_plsa_parameters_are_distributions_and_reproduce_wh(counts):
    rng = np.random.default_rng(2)
    W, H = rng.random((counts.shape[0], 4)), rng.random((4, counts.shape[1]))
    word_given_topic, topic_document = plsa_parameters(W, H)
    np.testing.assert_allclose(word_given_topic.sum(axis=0), 1.0, rtol=1e-12)
    assert topic_document.sum() == pytest.approx(1.0, rel=1e-12)
    np.testing.assert_allclose(word_given_topic @ topic_document, W @ H / np.sum(W @ H))
    assert plsa_log_likelihood(counts, word_given_topic, topic_document) < 0
    with pytest.raises(ValueError, match="column of W"):
        plsa_parameters(np.zeros((3, 2)), np.ones((2, 4)))


def test_kl_divergence_is_the_library_objective(counts):
    solution = jnmf.nmf(counts, 5, beta=1.0, solver="mu", max_iter=30, tol=0.0, key=0)
    W, H = np.asarray(solution.W), np.asarray(solution.H)
    assert kl_divergence(counts, W @ H) == pytest.approx(float(solution.objective), rel=1e-8)


def test_tfidf_matches_scikit_learn(counts):
    from sklearn.feature_extraction.text import TfidfTransformer

    expected = TfidfTransformer().fit_transform(counts.T).toarray().T
    np.testing.assert_allclose(tfidf(counts), expected, rtol=1e-10, atol=1e-14)


def test_perplexity_of_uniform_and_impossible_words():
    held = np.array([[3.0, 0.0], [1.0, 2.0], [0.0, 4.0], [5.0, 5.0]])
    seen = np.array([True, True, True, False])
    uniform = np.full(held.shape, 1.0 / 3.0)
    value, zeros, tokens = perplexity(uniform, held, seen)
    assert value == pytest.approx(3.0) and zeros == 0 and tokens == 10
    impossible = uniform.copy()
    impossible[2, 1] = 0.0
    assert perplexity(impossible, held, seen)[:2] == (float("inf"), 4.0)


@pytest.mark.parametrize(
    "section, message",
    [
        ({"rank": 0}, "rank must be"),
        ({"colour": 1}, "unknown"),
        ({"perplexity_ranks": [5, 5]}, "distinct"),
        ({"plsa_ranks": []}, "non-empty"),
        ({"test_fraction": 0.0}, "test_fraction"),
        ({"n_documents": 20, "rank": 40}, "rank must be"),
        ({"solver": "hals"}, "solver must be one of"),
        ({"lda_alpha": float("nan")}, "lda_alpha"),
    ],
)
def test_bad_config_is_refused(section, message):
    with pytest.raises(StudyConfigError, match=message):
        TopicsStudy().parse(section)


@pytest.mark.slow
def test_end_to_end_on_reduced_reuters():
    study = TopicsStudy()
    config = study.parse(
        {
            "n_documents": 100,
            "n_words": 600,
            "rank": 6,
            "max_iter": 80,
            "plsa_ranks": [3, 7],
            "plsa_max_iter": 10,
            "perplexity_ranks": [4],
            "lda_iter": 60,
            "encode_iter": 60,
        }
    )
    data = study.load(config)
    assert data.V.shape == (600, 100)
    results = {task.key: study.compute(task, data) for task in study.tasks(config)}
    tables = study.tables(results, config)
    assert len(tables["topics_top_words"]) == 2 * 6
    assert all(len(row["top_words"].split()) == 10 for row in tables["topics_top_words"])
    assert all(row["relative_error"] < 1e-8 for row in tables["topics_plsa_identity"])
    (row,) = tables["topics_perplexity"]
    for key in ("nmf_perplexity", "lda_perplexity"):
        assert 1.0 < row[key] < 600.0  # better than a uniform guess over the vocabulary
    figures = study.figures(results, config)
    assert set(figures) == {"top_words", "plsa_identity", "perplexity"}
