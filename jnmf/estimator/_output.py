"""scikit-learn's feature-name and output-container protocol, without importing scikit-learn.

* ``n_features_in_`` and ``feature_names_in_`` (string column names of a data frame) are
  recorded by ``fit``; ``transform`` refuses a different number of features and warns or
  refuses when the names differ, in scikit-learn's words;
* ``get_feature_names_out()`` gives ``nmf0, nmf1, …``;
* ``set_output(transform="pandas" | "polars" | "default" | None)`` chooses the container of
  ``transform`` and ``fit_transform``; unset, scikit-learn's global
  ``set_config(transform_output=…)`` is read if scikit-learn has been imported.  The
  configuration lives in ``_sklearn_output_config``, the attribute ``sklearn.base.clone``
  copies.
"""

from __future__ import annotations

import sys
import warnings

import numpy as np

_CONTAINERS = ("default", "pandas", "polars")


def check_features(estimator, X, names, n_features: int, *, reset: bool) -> None:
    """Record (``reset``) or compare the number of features and their names."""
    if reset:
        estimator.n_features_in_ = n_features
        if names is not None:
            estimator.feature_names_in_ = names
        elif hasattr(estimator, "feature_names_in_"):
            del estimator.feature_names_in_
        return
    fitted = getattr(estimator, "feature_names_in_", None)
    kind = type(estimator).__name__
    if fitted is not None and names is None:
        warnings.warn(
            f"X does not have valid feature names, but {kind} was fitted with feature names",
            UserWarning,
            stacklevel=4,
        )
    elif fitted is None and names is not None:
        warnings.warn(
            f"X has feature names, but {kind} was fitted without feature names",
            UserWarning,
            stacklevel=4,
        )
    elif fitted is not None and (len(fitted) != len(names) or np.any(fitted != names)):
        unseen = sorted(set(names) - set(fitted))
        missing = sorted(set(fitted) - set(names))
        raise ValueError(
            "The feature names should match those that were passed during fit.\n"
            f"Feature names unseen at fit time: {unseen}\n"
            f"Feature names seen at fit time, yet now missing: {missing}\n"
            "(pass the columns in the order used for fit)"
        )
    if n_features != estimator.n_features_in_:
        raise ValueError(
            f"X has {n_features} features, but {kind} is expecting "
            f"{estimator.n_features_in_} features as input."
        )


def feature_names_out(estimator, input_features) -> np.ndarray:
    """``["nmf0", …]`` after checking ``input_features`` against what ``fit`` saw."""
    if input_features is not None:
        given = np.asarray(list(input_features), dtype=object)
        fitted = getattr(estimator, "feature_names_in_", None)
        if fitted is not None:
            if len(given) != len(fitted) or np.any(given != fitted):
                raise ValueError("input_features is not equal to feature_names_in_")
        elif len(given) != estimator.n_features_in_:
            raise ValueError(
                "input_features should have length equal to number of features "
                f"({estimator.n_features_in_}), got {len(given)}"
            )
    prefix = type(estimator).__name__.lower()
    return np.asarray([f"{prefix}{i}" for i in range(estimator.n_components_)], dtype=object)


def check_container(transform) -> None:
    if transform is not None and transform not in _CONTAINERS:
        raise ValueError(
            f"output config must be in {_CONTAINERS} or None, got transform={transform!r}"
        )


def _container(estimator) -> str:
    chosen = getattr(estimator, "_sklearn_output_config", {}).get("transform")
    if chosen is not None:
        return chosen
    sklearn = sys.modules.get("sklearn")
    if sklearn is not None and hasattr(sklearn, "get_config"):
        return sklearn.get_config().get("transform_output", "default")
    return "default"


def wrap(estimator, W: np.ndarray, X):
    """W in the container ``set_output`` (or scikit-learn's global config) asks for."""
    container = _container(estimator)
    if container == "default":
        return W
    columns = list(estimator.get_feature_names_out())
    if container == "pandas":
        import pandas as pd

        index = X.index if isinstance(X, pd.DataFrame) else None
        return pd.DataFrame(W, index=index, columns=columns, copy=False)
    import polars as pl

    return pl.DataFrame(W, schema=columns, orient="row")
