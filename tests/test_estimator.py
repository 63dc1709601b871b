"""The scikit-learn-compatible estimator against scikit-learn's own NMF."""

import numpy as np
import pytest

from jnmf import Factors, gradients, make_problem
from jnmf.estimator import NMF

sklearn = pytest.importorskip("sklearn")
from sklearn.base import clone  # noqa: E402
from sklearn.decomposition import NMF as SklearnNMF  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402

from .conftest import low_rank  # noqa: E402


@pytest.fixture
def problem(rng):
    X, _, _ = low_rank(rng, 30, 20, 5, noise=0.05)
    W0 = rng.uniform(0.1, 1.0, (30, 4))
    H0 = rng.uniform(0.1, 1.0, (4, 20))
    return X, W0, H0


@pytest.mark.parametrize(
    "beta, penalties",
    [
        ("frobenius", {"alpha_W": 0.01, "alpha_H": 0.03, "l1_ratio": 0.3}),
        ("kullback-leibler", {"alpha_W": 0.01, "alpha_H": 0.02, "l1_ratio": 1.0}),
        (0.5, {}),
        (3.0, {"alpha_W": 0.01, "l1_ratio": 0.5}),
    ],
)
def test_same_factors_as_sklearn_mu(problem, beta, penalties):
    X, W0, H0 = problem
    args = dict(beta_loss=beta, solver="mu", init="custom", max_iter=60, tol=0.0, **penalties)
    ref = SklearnNMF(4, **args)
    W_ref = ref.fit_transform(X, W=W0.copy(), H=H0.copy())
    est = NMF(4, **args)
    W = est.fit_transform(X, W=W0, H=H0)
    np.testing.assert_allclose(W, W_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(est.components_, ref.components_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(est.reconstruction_err_, ref.reconstruction_err_, rtol=1e-10)
    assert est.n_iter_ == ref.n_iter_ == 60
    assert est.n_components_ == 4 and est.n_features_in_ == 20
    if beta == "kullback-leibler" and penalties:
        return  # scikit-learn's transform adds l1 again at every step: see the next test
    np.testing.assert_allclose(est.transform(X[:7]), ref.transform(X[:7]), rtol=1e-9, atol=1e-12)


def test_transform_reaches_the_penalized_minimum(problem):
    """W = transform(X) satisfies the KKT conditions of min_W≥0 D_1(X|WH) + l1‖W‖₁ + …

    (scikit-learn 1.9's KL transform adds l1_reg_W to a cached H-sum in place, so its
    penalty grows with every iteration; its W is not this minimizer.)
    """
    X, W0, H0 = problem
    est = NMF(4, beta_loss="kullback-leibler", init="custom", alpha_W=0.01, l1_ratio=1.0)
    est.set_params(max_iter=60, tol=0.0).fit(X, W=W0, H=H0)
    W = est.set_params(max_iter=2000).transform(X)
    prob = make_problem(X, 1.0, l1_W=20 * 0.01)  # l1_reg_W = n_features·alpha_W·l1_ratio

    def kkt(W):
        grad = np.asarray(gradients(prob, Factors(W, est.components_)).W)
        return np.abs(np.minimum(W, grad)).max()

    start = np.full(W.shape, np.sqrt(X.mean() / 4))  # transform's start
    assert kkt(W) < 1e-3 * kkt(start)


def test_default_init_and_tol_follow_sklearn(rng):
    X, _, _ = low_rank(rng, 40, 25, 6, noise=0.02)
    # init=None → nndsvda, deterministic: the same start and the same iterates
    same = NMF(6, tol=0.0).fit(X)
    ref = SklearnNMF(6, solver="mu", tol=0.0).fit(X)
    np.testing.assert_allclose(same.components_, ref.components_, rtol=1e-8, atol=1e-10)
    assert same.n_iter_ == ref.n_iter_ == 200
    # tol: checked every 10 iterations; jnmf's test (relative decrease of the objective) is
    # stricter than scikit-learn's (decrease relative to the initial error)
    est = NMF(2, tol=1e-3).fit(X)
    ref = SklearnNMF(2, solver="mu", tol=1e-3).fit(X)
    assert est.n_iter_ % 10 == 0 and ref.n_iter_ <= est.n_iter_ < 200
    assert est.reconstruction_err_ <= ref.reconstruction_err_ * (1 + 1e-9)
    # more components than min(n_samples, n_features): random init (nndsvda would fail)
    wide = NMF(30, max_iter=20, random_state=1).fit(X)
    assert wide.components_.shape == (30, 25)


def test_params_clone_and_repr():
    est = NMF(3, beta_loss="kullback-leibler", alpha_W=0.1, random_state=4)
    params = est.get_params()
    assert params["n_components"] == 3 and params["alpha_H"] == "same"
    assert set(params) == set(SklearnNMF().get_params()) - {"shuffle", "verbose"}
    twin = clone(est)
    assert twin is not est and twin.get_params() == params
    assert est.set_params(max_iter=7, l1_ratio=0.5) is est and est.max_iter == 7
    with pytest.raises(ValueError, match="invalid parameter"):
        est.set_params(learning_rate=1.0)
    assert repr(NMF(3, random_state=4)) == "NMF(n_components=3, random_state=4)"


@pytest.mark.slow
def test_pipeline_with_tfidf_on_reuters_titles():
    data = pytest.importorskip("jnmf.data")
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline

    try:
        titles = data.load_reuters().meta["titles"]
    except ImportError:
        pytest.skip("the lda package (Reuters titles) is not installed")
    texts = [t.split(" ", 1)[1] for t in titles]  # drop the running number
    pipe = make_pipeline(TfidfVectorizer(stop_words="english", min_df=2), NMF(8, random_state=0))
    W = pipe.fit_transform(texts[:300])
    nmf = pipe[-1]
    n_words = len(pipe[0].vocabulary_)
    assert W.shape == (300, 8) and nmf.components_.shape == (8, n_words)
    assert W.min() >= 0 and nmf.components_.min() >= 0
    W_new = pipe.transform(texts[300:])
    assert W_new.shape == (95, 8) and W_new.min() >= 0
    assert nmf.inverse_transform(W_new).shape == (95, n_words)
    ref = SklearnNMF(8, solver="mu").fit(pipe[0].transform(texts[:300]))
    assert nmf.reconstruction_err_ == pytest.approx(ref.reconstruction_err_, rel=0.05)
    assert clone(pipe).get_params()["nmf__n_components"] == 8


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_sparse_float32_and_other_solvers(rng):
    from scipy import sparse

    X, _, _ = low_rank(rng, 30, 20, 4)
    dense = NMF(4, max_iter=50, tol=0.0).fit_transform(X)
    np.testing.assert_allclose(
        NMF(4, max_iter=50, tol=0.0).fit_transform(sparse.csr_matrix(X)), dense, rtol=1e-12
    )
    est = NMF(4, max_iter=50).fit(X.astype(np.float32))
    assert est.components_.dtype == np.float32
    cd = NMF(4, solver="cd", max_iter=300, random_state=0).fit(X)
    ref = SklearnNMF(4, solver="cd", max_iter=300, random_state=0).fit(X)
    assert cd.reconstruction_err_ < 1.05 * ref.reconstruction_err_ + 1e-6
    with pytest.raises(ValueError, match="mu"):
        NMF(4, solver="hals", beta_loss="kullback-leibler").fit(X)


def test_bad_inputs(rng):
    X, _, _ = low_rank(rng, 10, 8, 2)
    with pytest.raises(NotFittedError):
        NMF(2).transform(X)
    with pytest.raises(ValueError, match="negative"):
        NMF(2).fit(X - 1.0)
    with pytest.raises(ValueError, match="2-D"):
        NMF(2).fit(X[0])
    for bad in (
        {"n_components": 0},
        {"n_components": 2.5},
        {"solver": "newton"},
        {"beta_loss": "hellinger"},
        {"l1_ratio": 1.5},
        {"alpha_W": -1.0},
        {"max_iter": 0},
        {"tol": -1.0},
        {"init": "pca"},
    ):
        with pytest.raises(ValueError):
            NMF(**{"n_components": 2, **bad}).fit(X)
    with pytest.raises(ValueError, match="custom"):
        NMF(2, init="custom").fit(X)
    with pytest.raises(ValueError, match="custom"):
        NMF(2).fit(X, W=np.ones((10, 2)), H=np.ones((2, 8)))
    est = NMF(2, max_iter=20).fit(X)
    with pytest.raises(ValueError, match="features"):
        est.transform(X[:, :5])
    with pytest.raises(ValueError, match="shape"):
        est.inverse_transform(np.ones((3, 5)))
