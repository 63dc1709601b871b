"""scikit-learn's ``check_estimator`` on ``jnmf.NMF``: every check passes, x64 off and on.

``parametrize_with_checks`` makes one test per check; each runs once with JAX's x64 off (where
float64 input must still come back float64) and once with it on (the tests' default).  No
check is expected to fail.  Checks that scikit-learn itself skips (array API input without
``SCIPY_ARRAY_API``, pandas or polars output when those are not installed) are skipped here.
"""

import jax
import pytest

pytest.importorskip("sklearn")
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from jnmf.estimator import NMF  # noqa: E402


@pytest.mark.parametrize("x64", [False, True], ids=["x64-off", "x64-on"])
@parametrize_with_checks([NMF(max_iter=500)], expected_failed_checks=lambda est: {})
def test_sklearn_check(estimator, check, x64):
    jax.config.update("jax_enable_x64", x64)  # the conftest fixture restores x64 afterwards
    check(estimator)
