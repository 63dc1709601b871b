"""scikit-learn's NMF tests that cannot apply to ``jnmf.NMF``, each with its reason.

Read by the harness in ``tests/test_sklearn_suite.py``, which runs scikit-learn's own
installed ``sklearn/decomposition/tests/test_nmf.py`` with ``NMF`` and
``non_negative_factorization`` replaced by jnmf's.  A key is a test function's name, or a
test id with its parameters (``name[ids]``) when only some parametrizations cannot apply;
every key must match at least one collected test (the harness checks it, so the list follows
scikit-learn's file).  A test that applies and fails is not listed here: it fails in CI.

``MiniBatchNMF`` is replaced by ``jnmf.MiniBatchNMF`` too.
"""

_PRIVATE = "tests only a private helper of scikit-learn ({}); no jnmf code runs in it"

INAPPLICABLE: dict[str, str] = {
    # ---------------------------------------------------------------- MiniBatchNMF
    "test_minibatch_nmf_partial_fit": (
        "passes on scikit-learn only because its fit and partial_fit update the caller's H in "
        "place and keep it as components_: both estimators end holding the very array the test "
        "passed (max |components_ - H| = 0 for both), although they saw different windows of X "
        "with different forgetting factors; jnmf never writes into its inputs, so the two fits "
        "differ as their data do"
    ),
    "test_nmf_n_components_auto[MiniBatchNMF]": (
        "reads scikit-learn's private attribute _n_components, as the NMF case below"
    ),
    # ---------------------------------------------------------------- private helpers
    "test_initialize_nn_output": _PRIVATE.format("_initialize_nmf"),
    "test_initialize_close": _PRIVATE.format("_initialize_nmf"),
    "test_initialize_variants": _PRIVATE.format("_initialize_nmf"),
    "test_beta_divergence": _PRIVATE.format("_beta_divergence"),
    "test_special_sparse_dot": _PRIVATE.format("_special_sparse_dot"),
    "test_nmf_underflow": _PRIVATE.format("_beta_divergence"),
    "test_nmf_n_components_auto[NMF]": (
        "reads scikit-learn's private attribute _n_components; the public n_components_ "
        "inferred from a custom H is tested in tests/test_estimator.py "
        "(test_custom_factors_checked_as_sklearn_checks_them)"
    ),
}
