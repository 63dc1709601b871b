"""Input checks of the estimator, worded as scikit-learn words them.

Users' code and tests match on scikit-learn's messages ("Negative values in data passed to
NMF (input X)", "Expected 2D array, got 1D array instead", …).  Every message here contains
scikit-learn's sentence and then says what to do, in jnmf's manner.  scikit-learn itself is
not imported: it is not a dependency of jnmf.

Data arrive as scikit-learn's NMF takes them: float32 and float64 are kept, every other
numeric dtype (integers, bools, float16) becomes float64; object arrays of numbers are
converted; SciPy sparse matrices and JAX ``BCOO`` are densified; complex and string data are
refused; subnormal entries become 0 (as ``jnmf.checks`` does for the core).
"""

from __future__ import annotations

import numpy as np

from jnmf.checks import flush_subnormals

_RESHAPE = (
    "Reshape your data either using array.reshape(-1, 1) if your data has a single feature "
    "or array.reshape(1, -1) if it contains a single sample."
)


def feature_names(X) -> np.ndarray | None:
    """The column names of a data frame whose names are all strings, else None."""
    columns = getattr(X, "columns", None)
    if columns is None or isinstance(X, np.ndarray):
        return None
    names = np.asarray(list(columns), dtype=object)
    if len(names) == 0 or not all(isinstance(name, str) for name in names):
        return None
    return names


def _dense(X):
    if hasattr(X, "toarray"):  # SciPy sparse
        return X.toarray()
    if hasattr(X, "todense") and not isinstance(X, np.ndarray):  # jax.experimental.sparse
        return np.asarray(X.todense())
    return X


def as_data(X, whom: str = "NMF (input X)") -> np.ndarray:
    """X as a finite, non-negative 2-D NumPy array of float32 or float64 (module docstring)."""
    X = _dense(X)
    values = np.asarray(X)
    if values.dtype == object:
        values = np.asarray(values, dtype=np.float64)  # TypeError names a non-number
    if np.issubdtype(values.dtype, np.complexfloating):
        raise ValueError(
            f"Complex data not supported: {whom} has dtype {values.dtype}; "
            "NMF factorizes real non-negative data (take np.abs or the real part first)"
        )
    if not (np.issubdtype(values.dtype, np.number) or values.dtype == np.bool_):
        raise ValueError(
            f"dtype='numeric' is not compatible with arrays of dtype {values.dtype}: "
            f"{whom} must hold numbers; convert your data to numeric values explicitly"
        )
    if values.dtype not in (np.float32, np.float64):
        values = values.astype(np.float64)
    if values.ndim == 0:
        raise ValueError(
            f"Expected 2D array, got scalar array instead:\narray={values}.\n{_RESHAPE}"
        )
    if values.ndim == 1:
        raise ValueError(f"Expected 2D array, got 1D array instead:\narray={values}.\n{_RESHAPE}")
    if values.ndim > 2:
        raise ValueError(
            f"Found array with dim {values.ndim}, while dim <= 2 is required by NMF "
            f"(got shape {values.shape}): X is n_samples × n_features"
        )
    n_samples, n_features = values.shape
    if n_samples == 0:
        raise ValueError(
            f"Found array with 0 sample(s) (shape={values.shape}) while a minimum of 1 is "
            "required by NMF."
        )
    if n_features == 0:
        raise ValueError(
            f"Found array with 0 feature(s) (shape={values.shape}) while a minimum of 1 is "
            "required by NMF."
        )
    check_entries(values, whom)
    return flush_subnormals(np.ascontiguousarray(values))


def check_entries(values: np.ndarray, whom: str) -> None:
    """Refuse NaN, infinite and negative entries, in scikit-learn's words and jnmf's."""
    name = whom.rsplit("input ", 1)[-1].rstrip(")")
    n_nan = int(np.isnan(values).sum())
    if n_nan:
        raise ValueError(
            f"Input {name} contains NaN. {whom} has {n_nan} NaN entries; NMF needs finite "
            "data (jnmf.nmf takes weights= that give missing entries weight 0)"
        )
    n_inf = int(np.isinf(values).sum())
    if n_inf:
        raise ValueError(
            f"Input {name} contains infinity or a value too large for {values.dtype!r}. "
            f"{whom} has {n_inf} infinite entries; NMF needs finite data"
        )
    negative = values < 0
    if negative.any():
        raise ValueError(
            f"Negative values in data passed to {whom}: {int(negative.sum())} negative "
            f"entries (min {values.min():.3g}); NMF needs non-negative data: shift, clip or "
            "use a signed method"
        )


def custom_factor(A, shape: tuple, whom: str, dtype) -> np.ndarray:
    """A user's starting W or H (``init="custom"``, ``update_H=False``), checked as
    scikit-learn checks it: shape ("auto" leaves a dimension free), dtype equal to X's
    (``TypeError``), finite, non-negative and not all zero."""
    A = np.asarray(_dense(A))
    name = whom.rsplit("input ", 1)[-1].rstrip(")")
    if A.ndim != 2:
        raise ValueError(f"Expected 2D array for {whom}, got shape {A.shape}.")
    for axis, word in ((0, "first"), (1, "second")):
        if shape[axis] != "auto" and A.shape[axis] != shape[axis]:
            raise ValueError(
                f"Array with wrong {word} dimension passed to {whom}. Expected "
                f"{shape[axis]}, but got {A.shape[axis]}. ({name} must have shape "
                f"{tuple(shape)} for X of {('n_samples', 'n_features')[axis]} rows/columns "
                "and n_components components)"
            )
    if A.dtype != dtype:
        raise TypeError(
            f"{name} should have the same dtype as X. Got {name}.dtype = {A.dtype} and "
            f"X.dtype = {np.dtype(dtype)}; convert it with {name}.astype(X.dtype)"
        )
    check_entries(A, whom)
    if A.size == 0 or np.max(A) == 0:
        raise ValueError(
            f"Array passed to {whom} is full of zeros. A zero factor stays zero under "
            "multiplicative updates; start from positive entries"
        )
    return flush_subnormals(A)
