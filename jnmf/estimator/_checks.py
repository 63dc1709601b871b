"""Input checks of the estimator, worded as scikit-learn words them.

Users' code and tests match on scikit-learn's messages ("Negative values in data passed to
NMF (input X)", "Expected 2D array, got 1D array instead", …).  Every message here contains
scikit-learn's sentence and then says what to do, in jnmf's manner.  scikit-learn itself is
not imported: it is not a dependency of jnmf.

Data arrive as scikit-learn's NMF takes them: float32 and float64 are kept, every other
numeric dtype (integers, bools, float16) becomes float64; object arrays of numbers are
converted; complex and string data are refused; subnormal entries become 0 (as
``jnmf.checks`` does for the core).  SciPy sparse matrices and JAX ``BCOO`` are densified,
or, with ``as_data(..., keep_sparse=True)`` (``NMF``), kept sparse as a SciPy CSR matrix
(SciPy imported only when the data are sparse) that the core factorizes without densifying.
"""

from __future__ import annotations

import numpy as np

from jnmf.checks import flush_subnormals, is_sparse_input

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


def _as_scipy(X):
    """A sparse X (SciPy, or JAX BCOO/BCSR without batch or dense dimensions) as SciPy."""
    if hasattr(X, "tocsr") or hasattr(X, "tocoo"):
        return X
    from scipy import sparse

    bcoo = X.to_bcoo() if hasattr(X, "to_bcoo") else X
    if bcoo.ndim != 2 or bcoo.n_batch or bcoo.n_dense:
        return np.asarray(X.todense())
    index = np.asarray(bcoo.indices)
    return sparse.coo_matrix((np.asarray(bcoo.data), (index[:, 0], index[:, 1])), bcoo.shape)


def is_sparse(X) -> bool:
    """X is a SciPy sparse matrix (what ``as_data(..., keep_sparse=True)`` returns)."""
    return hasattr(X, "tocsr") and not isinstance(X, np.ndarray)


def zero_count(X) -> int:
    """The number of zero entries of checked data (dense or SciPy sparse)."""
    if is_sparse(X):
        return X.shape[0] * X.shape[1] - int(X.count_nonzero())
    return int(np.count_nonzero(X == 0))


def _check_shape(shape, ndim: int, show, whom: str) -> None:
    if ndim < 2:
        kind = "scalar" if ndim == 0 else "1D"
        raise ValueError(
            f"Expected 2D array, got {kind} array instead:\narray={show()}.\n{_RESHAPE}"
        )
    if ndim > 2:
        raise ValueError(
            f"Found array with dim {ndim}, while dim <= 2 is required by NMF "
            f"(got shape {shape}): X is n_samples × n_features"
        )
    n_samples, n_features = shape
    if n_samples == 0:
        raise ValueError(
            f"Found array with 0 sample(s) (shape={shape}) while a minimum of 1 is required by NMF."
        )
    if n_features == 0:
        raise ValueError(
            f"Found array with 0 feature(s) (shape={shape}) while a minimum of 1 is "
            "required by NMF."
        )


def _float_values(values: np.ndarray, whom: str) -> np.ndarray:
    """Numeric values as float32/float64 (complex and non-numeric refused)."""
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
    return values


def _as_sparse_data(X, whom: str):
    """A sparse X as a checked SciPy CSR matrix of float32/float64 (duplicates summed)."""
    X = _as_scipy(X)
    if isinstance(X, np.ndarray):
        return as_data(X, whom)
    _check_shape(X.shape, X.ndim, lambda: X, whom)
    csr = X.tocsr(copy=True)
    csr.sum_duplicates()
    csr.data = _float_values(np.asarray(csr.data), whom)
    check_entries(csr.data, whom)
    csr.data = flush_subnormals(csr.data)
    return csr


def as_data(X, whom: str = "NMF (input X)", keep_sparse: bool = False):
    """X as a finite, non-negative 2-D NumPy array of float32 or float64 (module docstring);
    with ``keep_sparse=True`` a sparse X comes back as a checked SciPy CSR matrix instead."""
    if keep_sparse and is_sparse_input(X):
        return _as_sparse_data(X, whom)
    X = _dense(X)
    values = _float_values(np.asarray(X), whom)
    _check_shape(values.shape, values.ndim, lambda: values, whom)
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
