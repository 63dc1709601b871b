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
    if beta == "frobenius":
        return  # transform by HALS at β = 2: test_transform_solves_the_subproblem
    np.testing.assert_allclose(est.transform(X[:7]), ref.transform(X[:7]), rtol=1e-9, atol=1e-12)


def test_transform_reaches_the_penalized_minimum(problem):
    """W = transform(X) satisfies the KKT conditions of min_W≥0 D_1(X|WH) + l1‖W‖₁ + …

    (scikit-learn 1.9's KL transform adds l1_reg_W to a cached H-sum in place, so its
    penalty grows with every iteration; its W is not this minimizer.)
    """
    X, W0, H0 = problem
    est = NMF(4, beta_loss=1.0, solver="mu", init="custom", alpha_W=0.01, l1_ratio=1.0)
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
    # init=None → nndsvda, deterministic: the same start and the same iterates; the default
    # solver at β = 2 is scikit-learn's default "cd" (HALS)
    same = NMF(6, tol=0.0).fit(X)
    ref = SklearnNMF(6, tol=0.0).fit(X)
    np.testing.assert_allclose(same.components_, ref.components_, rtol=1e-8, atol=1e-10)
    assert same.n_iter_ == ref.n_iter_ == 200
    assert NMF(beta_loss=1.0)._solver_name(1.0) == "mu"  # "auto": MU for β ≠ 2
    # tol: checked every 10 iterations; jnmf's test (relative decrease of the objective) is
    # stricter than scikit-learn's (decrease relative to the initial error)
    est = NMF(2, solver="mu", tol=1e-3).fit(X)
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
    assert set(params) == set(SklearnNMF().get_params())
    twin = clone(est)
    assert twin is not est and twin.get_params() == params
    assert est.set_params(max_iter=7, l1_ratio=0.5) is est and est.max_iter == 7
    with pytest.raises(ValueError, match="Invalid parameter"):
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
        NMF(4, max_iter=50, tol=0.0).fit_transform(sparse.csr_matrix(X)), dense, rtol=1e-10
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
    with pytest.raises(ValueError, match="Expected 2D array"):
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
    with pytest.warns(RuntimeWarning, match="init!='custom'"):
        NMF(2, max_iter=20, tol=0.0).fit(X, W=np.ones((10, 2)), H=np.ones((2, 8)))
    est = NMF(2, max_iter=20).fit(X)
    with pytest.raises(ValueError, match="features"):
        est.transform(X[:, :5])
    with pytest.raises(ValueError, match="shape"):
        est.inverse_transform(np.ones((3, 5)))


# ------------------------------------------------------------------ scikit-learn's protocol


def _kkt_W(X, W, H, beta, l1=0.0, l2=0.0):
    grad = np.asarray(gradients(make_problem(X, beta, l1_W=l1, l2_W=l2), Factors(W, H)).W)
    return np.abs(np.minimum(W, grad)).max()


def test_transform_solves_the_subproblem(problem):
    """At β = 2 transform reaches the penalized minimizer over W (HALS, exact zeros)."""
    X, W0, H0 = problem
    est = NMF(4, init="custom", alpha_W=0.01, alpha_H=0.03, l1_ratio=0.3, max_iter=60)
    est.set_params(tol=0.0).fit(X, W=W0, H=H0)
    W = est.set_params(max_iter=300, tol=0.0).transform(X)
    l1, l2 = 20 * 0.01 * 0.3, 20 * 0.01 * 0.7
    start = np.full(W.shape, np.sqrt(X.mean() / 4))
    assert _kkt_W(X, W, est.components_, 2.0, l1, l2) < 1e-8 * _kkt_W(
        X, start, est.components_, 2.0, l1, l2
    )


def test_fit_transform_and_transform_agree():
    """scikit-learn's check_transformer_general data: they disagreed by 0.0116 (MU fit and MU
    transform); the default at β = 2 (HALS fit, HALS transform) agrees to 3e-4, and an MU fit
    with the HALS transform within the check's 1e-2 (0.0072)."""
    from sklearn.datasets import make_blobs
    from sklearn.preprocessing import StandardScaler

    X, _ = make_blobs(30, centers=[[0, 0, 0], [1, 1, 1]], random_state=0, n_features=2)
    X = StandardScaler().fit_transform(X)
    X -= X.min()
    for solver, atol in (("auto", 1e-3), ("mu", 1e-2)):
        est = NMF(max_iter=500, random_state=0, solver=solver)
        W_fit, W = est.fit_transform(X), est.transform(X)
        np.testing.assert_allclose(W_fit, W, atol=atol)
    start = np.full(W.shape, np.sqrt(X.mean() / W.shape[1]))
    H = est.components_
    assert _kkt_W(X, W, H, 2.0) < 1e-6 * _kkt_W(X, start, H, 2.0)


def test_float64_kept_with_x64_off(rng):
    import jax

    X, _, _ = low_rank(rng, 12, 9, 3)
    jax.config.update("jax_enable_x64", False)  # the conftest fixture turns it on again
    est = NMF(3, max_iter=30, tol=0.0)
    W = est.fit_transform(X)
    assert W.dtype == est.components_.dtype == est.transform(X).dtype == np.float64
    assert not jax.config.jax_enable_x64  # switched on only inside the estimator's calls
    assert est.fit_transform(X.astype(np.float32)).dtype == np.float32
    assert est.fit_transform((10 * X).astype(np.int64)).dtype == np.float64
    assert est.fit_transform(X.astype(np.float16)).dtype == np.float64  # as scikit-learn


def test_messages_contain_sklearns(rng):
    """Each refusal contains scikit-learn's sentence (and still says what to do)."""
    X, _, _ = low_rank(rng, 6, 5, 2)
    est = NMF(2, max_iter=20).fit(X)
    cases = [
        (lambda: NMF(2).fit(-X), ValueError, r"Negative values in data passed to NMF \(input X\)"),
        (lambda: est.transform(-X), ValueError, r"Negative values in data passed to NMF"),
        (lambda: NMF(2).fit(X[0]), ValueError, "Expected 2D array, got 1D array instead"),
        (lambda: NMF(2).fit(X[:0]), ValueError, r"0 sample\(s\) \(shape=\(0, 5\)\)"),
        (lambda: NMF(2).fit(X[:, :0]), ValueError, r"0 feature\(s\) \(shape=\(6, 0\)\) while"),
        (lambda: NMF(2).fit(X + 0j), ValueError, "Complex data not supported"),
        (lambda: NMF(2).fit(X[None]), ValueError, "Found array with dim 3"),
        (
            lambda: est.transform(X[:, :3]),
            ValueError,
            "X has 3 features, but NMF is expecting 5 features as input.",
        ),
        (
            lambda: NMF(solver="cd", beta_loss=1.0).fit(X),
            ValueError,
            "Invalid beta_loss parameter: solver 'cd' does not handle beta_loss = 1.0",
        ),
        (
            lambda: NMF(2, beta_loss=0.0).fit(np.where(X > 0.5, X, 0.0)),
            ValueError,
            "When beta_loss <= 0 and X contains zeros, the solver may diverge.",
        ),
        (
            lambda: NMF(6, init="nndsvda").fit(X),
            ValueError,
            r"init = 'nndsvda' can only be used when n_components <= min\(n_samples, ",
        ),
    ]
    for call, kind, message in cases:
        with pytest.raises(kind, match=message):
            call()
    nan = X.copy()
    nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        NMF(2).fit(nan)
    with pytest.raises(ValueError, match="Input X contains infinity"):
        NMF(2).fit(np.where(nan > 0, nan, np.inf))
    objects = X.astype(object)
    assert NMF(2, max_iter=20).fit(objects).components_.dtype == np.float64
    objects[0, 0] = {"foo": "bar"}
    with pytest.raises(TypeError, match="argument must be a string.* number"):
        NMF(2).fit(objects)


def test_custom_factors_checked_as_sklearn_checks_them(rng):
    X, _, _ = low_rank(rng, 6, 5, 2)
    W, H = rng.uniform(0.1, 1, (6, 2)), rng.uniform(0.1, 1, (2, 5))
    custom = NMF(2, init="custom", max_iter=20)
    cases = [
        ((W, -H), ValueError, r"Negative values in data passed to NMF \(input H\)"),
        ((-W, H), ValueError, r"Negative values in data passed to NMF \(input W\)"),
        ((W, 0 * H), ValueError, r"Array passed to NMF \(input H\) is full of zeros"),
        ((W[:5], H), ValueError, r"Array with wrong first dimension passed to NMF \(input W\)"),
        ((W, H[:, :4]), ValueError, r"wrong second dimension passed to NMF \(input H\)"),
        ((W, H.astype(np.float32)), TypeError, "H should have the same dtype as X"),
        ((W.astype(np.float32), H), TypeError, "W should have the same dtype as X"),
    ]
    for (W0, H0), kind, message in cases:
        with pytest.raises(kind, match=message):
            custom.fit(X, W=W0, H=H0)
    auto = NMF("auto", init="custom", max_iter=20, tol=0.0).fit(X, W=W, H=H)
    assert auto.n_components_ == 2 and auto.components_.shape == (2, 5)


def test_non_negative_factorization_holds_H_fixed(rng):
    from jnmf.estimator import non_negative_factorization

    X, _, _ = low_rank(rng, 12, 9, 3)
    est = NMF(3, max_iter=50, tol=0.0, random_state=0)
    W_fit = est.fit_transform(X)
    W, H, n_iter = non_negative_factorization(
        X, max_iter=50, tol=0.0, random_state=0, n_components=3
    )
    np.testing.assert_array_equal(W, W_fit)
    np.testing.assert_array_equal(H, est.components_)
    assert n_iter == 50
    H_fixed = est.components_
    W, H, _ = non_negative_factorization(X, H=H_fixed, update_H=False, max_iter=50, tol=0.0)
    np.testing.assert_array_equal(H, H_fixed)
    np.testing.assert_array_equal(W, est.set_params(max_iter=50, tol=0.0).transform(X))
    with pytest.warns(RuntimeWarning, match="the provided initial W is not used"):
        non_negative_factorization(X, W=W, H=H_fixed, update_H=False, max_iter=5, tol=0.0)
    with pytest.raises(TypeError, match="H should have the same dtype as X"):
        non_negative_factorization(X, H=H_fixed.astype(np.float32), update_H=False)
    W, H, _ = non_negative_factorization(X, H=H_fixed[:2], update_H=False, max_iter=5, tol=0)
    assert W.shape == (12, 2) and H.shape == (2, 9)  # n_components="auto" from H
    for beta in (1.0, 1.5):  # the fitting solver (MU) with H held fixed (static, traced β)
        W, H, _ = non_negative_factorization(
            X, H=H_fixed, update_H=False, beta_loss=beta, max_iter=500, tol=0.0
        )
        start = np.full(W.shape, np.sqrt(X.mean() / 3))
        np.testing.assert_array_equal(H, H_fixed)
        assert _kkt_W(X, W, H, beta) < 0.05 * _kkt_W(X, start, H, beta)  # MU: slow to 0


def test_warnings_at_max_iter_and_when_non_finite(rng, monkeypatch):
    import warnings

    import equinox as eqx
    import jax.numpy as jnp
    from sklearn.exceptions import ConvergenceWarning

    from jnmf import Status
    from jnmf.estimator import _nmf

    X, _, _ = low_rank(rng, 6, 5, 2)
    message = "Maximum number of iterations 1 reached. Increase it to improve convergence."
    with pytest.warns(ConvergenceWarning, match=message):
        NMF(max_iter=1, solver="cd").fit(np.ones((2, 2)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        NMF(2, max_iter=5, tol=0.0).fit(X)  # tol = 0 asks for max_iter iterations: no warning
    real = _nmf._solve_program

    def turns_non_finite(*args):  # a solve that stopped non-finite after iteration 10
        solution, divergence = real(*args)
        solution = eqx.tree_at(
            lambda s: (s.status, s.n_iter), solution, (Status.NONFINITE, jnp.asarray(10))
        )
        return solution, divergence

    monkeypatch.setattr(_nmf, "_solve_program", turns_non_finite)
    with pytest.warns(RuntimeWarning, match=r"non-finite value .* between iterations 11 and 20"):
        est = NMF(2, max_iter=20, tol=0.0).fit(X)
    assert est.n_iter_ == 10
    with pytest.warns(RuntimeWarning, match=r"NMF transform: a non-finite value"):
        est.transform(X)

    def stalls(*args):
        solution, divergence = real(*args)
        return eqx.tree_at(lambda s: s.status, solution, Status.STALLED), divergence

    monkeypatch.setattr(_nmf, "_solve_program", stalls)
    with pytest.warns(ConvergenceWarning, match="NMF fit stalled at iteration 20"):
        NMF(2, max_iter=20, tol=0.0).fit(X)


def test_verbose_shuffle_and_feature_names(rng, capsys):
    X, _, _ = low_rank(rng, 6, 5, 2)
    est = NMF(2, max_iter=20, tol=0.0, verbose=1).fit(X)
    printed = capsys.readouterr().out
    assert "iteration    10: objective" in printed and "NMF fit: 20 iterations" in printed
    with pytest.warns(UserWarning, match="shuffle=True has no effect"):
        NMF(2, solver="cd", shuffle=True, max_iter=20, tol=0.0).fit(X)
    np.testing.assert_array_equal(est.get_feature_names_out(), ["nmf0", "nmf1"])
    with pytest.raises(ValueError, match="input_features should have length"):
        est.get_feature_names_out(["a", "b"])
    with pytest.raises(NotFittedError):
        NMF(2).get_feature_names_out()

    class Frame:  # what scikit-learn reads of a data frame: columns and the array
        def __init__(self, values, columns):
            self.values, self.columns = values, columns

        def __array__(self, dtype=None, copy=None):
            return self.values

    names = ["a", "b", "c", "d", "e"]
    named = NMF(2, max_iter=20, tol=0.0).fit(Frame(X, names))
    np.testing.assert_array_equal(named.feature_names_in_, names)
    np.testing.assert_array_equal(named.get_feature_names_out(names), ["nmf0", "nmf1"])
    with pytest.raises(ValueError, match="input_features is not equal to feature_names_in_"):
        named.get_feature_names_out(names[::-1])
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        named.transform(X)
    with pytest.raises(ValueError, match="The feature names should match"):
        named.transform(Frame(X, names[::-1]))
    with pytest.warns(UserWarning, match="X has feature names, but NMF was fitted without"):
        est.transform(Frame(X, names))
    assert not hasattr(NMF(2, max_iter=20, tol=0.0).fit(X), "feature_names_in_")


def test_set_output(rng):
    X, _, _ = low_rank(rng, 6, 5, 2)
    est = NMF(2, max_iter=20, tol=0.0)
    assert est.set_output(transform="default") is est
    assert isinstance(est.fit_transform(X), np.ndarray)
    with pytest.raises(ValueError, match="output config must be in"):
        est.set_output(transform="arrow")
    assert clone(est.set_output(transform="pandas"))._sklearn_output_config == {
        "transform": "pandas"
    }
    try:
        import pandas as pd
    except ImportError:
        with pytest.raises(ImportError):
            est.fit_transform(X)
        return
    frame = est.fit_transform(pd.DataFrame(X, columns=list("abcde"), index=range(10, 16)))
    assert list(frame.columns) == ["nmf0", "nmf1"] and list(frame.index) == list(range(10, 16))


def test_sklearn_is_not_imported_by_jnmf():
    import subprocess
    import sys

    code = "import sys, jnmf; jnmf.NMF(2); assert 'sklearn' not in sys.modules, 'imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_stand_ins_without_sklearn(monkeypatch):
    import sys

    from jnmf.estimator import _nmf

    monkeypatch.setitem(sys.modules, "sklearn.exceptions", None)  # import raises ImportError
    warning = _nmf.convergence_warning()
    assert issubclass(warning, UserWarning) and warning.__module__ == "jnmf.estimator._nmf"
    error = _nmf._not_fitted_error(NMF())
    assert type(error) is ValueError and "not fitted yet" in str(error)
