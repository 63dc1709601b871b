"""Argument checks, each written once: Python-side validation before anything is compiled.

Every check raises ``ValueError`` with a message that says what to do, and returns the value
in the form the core uses (a Python ``int``, a ``float``, a JAX array or PRNG key).  Values
that are JAX tracers (under ``jit``, ``vmap`` or ``grad``) are checked for what is static
(shape, dtype) and passed through; their values are not read.

What arrives as data is normalized at this boundary, so that the checks see what the
compiled program sees:

* float16 and bfloat16 arrays are upcast to float32 (in half precision ‖V − WH‖² and the MU
  products overflow at ~6.5e4); integer and bool arrays become JAX's default float;
* subnormal entries (0 < |x| < the dtype's smallest normal number, e.g. 1e-323 in float64)
  are set to exactly 0: XLA flushes them to zero on CPU and GPU, so a check that reads
  ``V > 0`` in NumPy would otherwise disagree with the program (KL would then meet
  0·log 0 where the check saw a positive entry);
* a sparse V (``jax.experimental.sparse.BCOO`` or SciPy sparse, imported lazily) becomes a
  ``jnmf.sparse.SparseMatrix`` (``as_sparse_matrix``): entries outside the shape dropped,
  duplicates summed, indices sorted row-major, values normalized and checked as a dense V's
  are.  Every other argument (weights, factors) must be dense (``refuse_sparse``).
"""

from __future__ import annotations

import math
import numbers
import sys
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

SEED_RANGE = (-(2**63), 2**63 - 1)  # what jax.random.PRNGKey accepts for an integer seed


def _is_tracer(x) -> bool:
    return isinstance(x, jax.core.Tracer)


def _is_integer(v) -> bool:
    """A Python or NumPy integer that is not a bool."""
    return isinstance(v, (numbers.Integral, np.integer)) and not isinstance(v, (bool, np.bool_))


def is_sparse_input(x) -> bool:
    """x is a ``jnmf.sparse.SparseMatrix``, a ``jax.experimental.sparse`` or a SciPy sparse
    matrix (only modules already imported are consulted: a sparse matrix implies its module
    is loaded)."""
    from jnmf.sparse import SparseMatrix

    if isinstance(x, SparseMatrix):
        return True
    jax_sparse = sys.modules.get("jax.experimental.sparse")
    scipy_sparse = sys.modules.get("scipy.sparse")
    if jax_sparse is not None and isinstance(x, jax_sparse.JAXSparse):
        return True
    return scipy_sparse is not None and scipy_sparse.issparse(x)


def refuse_sparse(V, name: str = "V") -> None:
    """Raise ``ValueError`` when ``name`` is a sparse matrix (only V may be sparse)."""
    if not is_sparse_input(V):
        return
    how = f"{name}.toarray()" if hasattr(V, "toarray") else f"{name}.todense()"
    raise ValueError(
        f"sparse input is not supported yet for {name} (only the data V may be sparse); pass "
        f"{how} (got {type(V).__name__} of shape {tuple(V.shape)})"
    )


def _sparse_parts(V, name: str):
    """(rows, cols, values, shape) of a concrete SciPy sparse matrix or BCOO, as NumPy."""
    if hasattr(V, "tocoo"):  # SciPy
        if V.ndim != 2:
            raise ValueError(f"{name} must be a 2-D matrix (n×m), got shape {tuple(V.shape)}")
        coo = V.tocoo()
        return np.asarray(coo.row), np.asarray(coo.col), np.asarray(coo.data), coo.shape
    from jax.experimental.sparse import BCOO

    if not isinstance(V, BCOO):
        raise ValueError(
            f"sparse {name} must be a jax.experimental.sparse.BCOO or a SciPy sparse matrix, "
            f"got {type(V).__name__}; convert it with BCOO.from_scipy_sparse or .todense()"
        )
    if V.ndim != 2:
        raise ValueError(f"{name} must be a 2-D matrix (n×m), got shape {tuple(V.shape)}")
    if V.n_batch or V.n_dense:
        raise ValueError(
            f"sparse {name} must be a BCOO with n_batch = n_dense = 0 (plain (row, column) "
            f"indices), got n_batch={V.n_batch}, n_dense={V.n_dense}"
        )
    index = np.asarray(V.indices)
    return index[:, 0], index[:, 1], np.asarray(V.data), V.shape


def as_sparse_matrix(V, name: str = "V"):
    """A sparse ``V`` as a ``jnmf.sparse.SparseMatrix`` (n×m) in the float dtype the core
    computes in.

    Concrete input (SciPy sparse or BCOO): entries outside the shape (BCOO padding) are
    dropped, duplicate indices summed, indices sorted row-major (int32), values normalized as
    ``as_float_array`` does and checked as ``check_matrix`` checks a dense V (same messages:
    NaN, infinite or negative entries; not 2-D; empty).  A BCOO whose values are traced (under
    ``jit``) is checked for shape and dtype only, and must already hold unique in-bounds
    indices (as ``BCOO.sum_duplicates`` leaves them); its indices are sorted.
    """
    from jax.experimental.sparse import BCOO

    from jnmf.sparse import SparseMatrix

    if isinstance(V, SparseMatrix):
        return V
    if isinstance(V, BCOO) and (_is_tracer(V.data) or _is_tracer(V.indices)):
        if V.ndim != 2 or V.n_batch or V.n_dense:
            raise ValueError(
                f"{name} must be a 2-D BCOO with n_batch = n_dense = 0, got shape {tuple(V.shape)}"
            )
        _check_nonempty(V.shape, name)
        try:
            dtype = _float_dtype(V.dtype)
        except ValueError as err:
            raise ValueError(f"{name} {err}") from None
        V = V.sort_indices()
        data = V.data if V.dtype == dtype else V.data.astype(dtype)
        return SparseMatrix(data, V.indices, tuple(V.shape))
    row, col, values, shape = _sparse_parts(V, name)
    n, m = (int(d) for d in shape)
    _check_nonempty((n, m), name)
    if not (jnp.issubdtype(values.dtype, jnp.number) or values.dtype == np.bool_):
        raise ValueError(f"{name} must be a numeric array, got dtype {values.dtype}")
    inside = (row >= 0) & (row < n) & (col >= 0) & (col < m)
    linear = row[inside].astype(np.int64) * m + col[inside].astype(np.int64)
    unique, inverse = np.unique(linear, return_inverse=True)
    summed = np.zeros(unique.shape, values.dtype)
    np.add.at(summed, inverse, values[inside])
    data = as_float_array(summed, name)
    _check_values(np.asarray(data), name)
    index_dtype = np.int32 if max(n, m) < 2**31 else np.int64
    index = np.stack([unique // m, unique % m], axis=1).astype(index_dtype)
    return SparseMatrix(data, jnp.asarray(index), (n, m))


def _float_dtype(dtype) -> np.dtype:
    """The dtype the core computes in for input of ``dtype`` (or raise for non-numbers)."""
    if jnp.issubdtype(dtype, jnp.complexfloating):
        raise ValueError(f"must be real, got {dtype}")
    if jnp.issubdtype(dtype, jnp.floating):
        return np.dtype(jnp.float32) if jnp.finfo(dtype).bits < 32 else np.dtype(dtype)
    if jnp.issubdtype(dtype, jnp.integer) or jnp.issubdtype(dtype, jnp.bool_):
        return np.dtype(jnp.result_type(float))
    raise ValueError(f"must be a numeric array, got dtype {dtype}")


def flush_subnormals(values: np.ndarray) -> np.ndarray:
    """``values`` with subnormal entries (0 < |x| < smallest normal) set to 0."""
    tiny = np.finfo(values.dtype).tiny
    subnormal = (values != 0) & (np.abs(values) < tiny)
    if not subnormal.any():
        return values
    return np.where(subnormal, np.zeros((), values.dtype), values)


def as_float_array(x, name: str) -> Array:
    """``x`` as a real JAX float array, normalized as the module docstring says.

    float32/float64 are kept; float16/bfloat16 become float32; integers and bools become
    JAX's default float; subnormal entries become 0.  Warns (never downcasts silently) when
    float64 data arrive without ``jax_enable_x64``.  Raises ``ValueError`` for sparse, string,
    object or complex input.
    """
    refuse_sparse(x, name)
    if _is_tracer(x):
        try:
            dtype = _float_dtype(x.dtype)
        except ValueError as err:
            raise ValueError(f"{name} {err}") from None
        return x if x.dtype == dtype else x.astype(dtype)
    values = np.asarray(x)
    if not (jnp.issubdtype(values.dtype, jnp.number) or values.dtype == np.bool_):
        raise ValueError(
            f"{name} must be a numeric array, got dtype {values.dtype}; convert it first, "
            f"e.g. np.asarray({name}, dtype=float)"
        )
    try:
        dtype = _float_dtype(values.dtype)
    except ValueError as err:
        raise ValueError(f"{name} {err}") from None
    if dtype == np.float64 and not jax.config.jax_enable_x64:
        warnings.warn(
            f"{name} is float64 but jax_enable_x64 is off, so JAX computes in float32. "
            "Call jax.config.update('jax_enable_x64', True) first to keep float64.",
            stacklevel=3,
        )
        dtype = np.dtype(np.float32)
    cast = values.astype(dtype, copy=False)
    flushed = flush_subnormals(cast)
    if isinstance(x, jax.Array) and flushed is values:
        return x
    return jax.device_put(flushed)  # jnp.asarray would compile a copy per shape


def _check_nonempty(shape, name: str) -> None:
    if shape[0] == 0 or shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {tuple(shape)}): nothing to factorize")


def _check_values(vals: np.ndarray, name: str) -> None:
    """Raise ``ValueError`` for NaN, infinite or negative entries (any shape)."""
    if np.isnan(vals).any():
        raise ValueError(
            f"{name} has {int(np.isnan(vals).sum())} NaN entries; NMF needs finite data "
            "(give missing entries weight 0 with `weights=` to ignore them)"
        )
    if np.isinf(vals).any():
        raise ValueError(
            f"{name} has {int(np.isinf(vals).sum())} infinite entries; NMF needs finite data"
        )
    if (vals < 0).any():
        raise ValueError(
            f"{name} has {int((vals < 0).sum())} negative entries (min {vals.min():.3g}); "
            "NMF needs non-negative data: shift, clip or use a signed method"
        )


def check_matrix(V: Array, name: str = "V", *, allow_nan_where=None) -> None:
    """Raise ``ValueError`` unless V is a non-empty 2-D matrix of finite entries ≥ 0.

    ``allow_nan_where``: a boolean mask of entries exempt from the checks (missing data).
    """
    if V.ndim != 2:
        raise ValueError(f"{name} must be a 2-D matrix (n×m), got shape {tuple(V.shape)}")
    _check_nonempty(V.shape, name)
    if _is_tracer(V):
        return
    vals = np.asarray(V)
    if allow_nan_where is not None:
        vals = np.where(np.asarray(allow_nan_where), 0.0, vals)
    _check_values(vals, name)


def check_positive_int(name: str, v) -> int:
    """``v`` as a Python int ≥ 1 (a count: max_iter, every, n_restarts, …); bools refused."""
    if not _is_integer(v) or v < 1:
        raise ValueError(f"{name} must be an integer ≥ 1, got {v!r}")
    return int(v)


def check_rank(rank, shape: tuple[int, int] | None = None, init=None) -> int:
    """The rank r as a Python int ≥ 1; with ``shape`` and an NNDSVD ``init``, r ≤ min(n, m).

    NNDSVD starts from the leading r singular triplets of V, of which there are min(n, m).
    """
    if not _is_integer(rank) or rank < 1:
        raise ValueError(f"rank must be an integer ≥ 1, got {rank!r} (the number of columns of W)")
    rank = int(rank)
    if shape is not None and isinstance(init, str) and init.startswith("nndsvd"):
        if rank > min(shape):
            raise ValueError(
                f"init={init!r} needs rank ≤ min(n, m) = {min(shape)}, got rank {rank}; "
                "use init='random' for a larger rank"
            )
    return rank


def check_nonneg_scalar(name: str, v) -> float | Array:
    """A finite real number ≥ 0 (tol, kkt_tol, a penalty weight); a JAX scalar is kept.

    Python and NumPy reals and 0-d arrays are accepted; strings, bools, NaN, ±inf, negative
    numbers and arrays with dimensions are refused.  A traced 0-d array passes unread.
    """
    if isinstance(v, jax.Array):
        if v.ndim != 0:
            raise ValueError(f"{name} must be a real scalar, got an array of shape {v.shape}")
        if not jnp.issubdtype(v.dtype, jnp.number) or jnp.issubdtype(v.dtype, jnp.complexfloating):
            raise ValueError(f"{name} must be a real number ≥ 0, got dtype {v.dtype}")
        if _is_tracer(v):
            return v
        value, result = float(v), v
    else:
        arr = np.asarray(v) if isinstance(v, np.ndarray) else v
        if isinstance(arr, np.ndarray):
            if arr.ndim != 0:
                raise ValueError(f"{name} must be a real scalar, got an array of shape {arr.shape}")
            arr = arr[()]
        if isinstance(arr, (bool, np.bool_)) or not isinstance(arr, (numbers.Real, np.number)):
            raise ValueError(f"{name} must be a real number ≥ 0, got {v!r}")
        if isinstance(arr, np.complexfloating):
            raise ValueError(f"{name} must be real, got {v!r}")
        value = result = float(arr)
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number ≥ 0, got {v!r}")
    return result


def check_key(key) -> Array:
    """A JAX PRNG key from an integer seed or a key; None means seed 0.

    Accepted: a Python or NumPy integer in ``SEED_RANGE``, a typed key (``jax.random.key``,
    shape ()) or a raw key (``jax.random.PRNGKey``, uint32 of the default key shape).
    """
    if key is None:
        key = 0
    if _is_integer(key):
        low, high = SEED_RANGE
        if not low <= int(key) <= high:
            raise ValueError(
                f"key={key!r} is out of range: an integer seed must lie in [-2**63, 2**63 - 1]"
            )
        return jax.random.PRNGKey(int(key))
    if isinstance(key, (jax.Array, np.ndarray)):
        if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
            if key.shape != ():
                raise ValueError(f"key must be one PRNG key, got an array of keys {key.shape}")
            return key
        raw_shape = jax.eval_shape(jax.random.PRNGKey, 0).shape
        if key.dtype == np.uint32 and key.shape == raw_shape:
            return jnp.asarray(key)
    raise ValueError(
        f"key must be an integer seed or a JAX PRNG key (jax.random.key(0) or "
        f"jax.random.PRNGKey(0)), got {key!r}"
    )


def check_beta(beta) -> float | Array:
    """A numeric β as a Python float (static: fast paths) or a JAX 0-d array (traced).

    Python and NumPy reals and 0-d NumPy arrays become floats; a JAX array must be 0-d (to
    batch over β, ``vmap`` over a 0-d β).  β must be finite.  Names are resolved before this
    by ``jnmf.divergence.beta_from_name``.
    """
    if isinstance(beta, jax.Array):
        if beta.ndim != 0:
            raise ValueError(
                f"beta must be a scalar, got an array of shape {beta.shape}; "
                "to fit several β, call once per β or vmap over a 0-d β"
            )
        if not jnp.issubdtype(beta.dtype, jnp.number) or jnp.issubdtype(
            beta.dtype, jnp.complexfloating
        ):
            raise ValueError(f"beta must be real, got dtype {beta.dtype}")
        if not _is_tracer(beta) and not math.isfinite(float(beta)):
            raise ValueError(f"beta must be finite, got {float(beta)}")
        return beta
    value = beta
    if isinstance(value, np.ndarray):
        if value.ndim != 0:
            raise ValueError(
                f"beta must be a scalar, got an array of shape {value.shape}; "
                "fit once per β to compare several"
            )
        value = value[()]
    is_real = isinstance(value, (numbers.Real, np.integer, np.floating))
    if isinstance(value, (bool, np.bool_)) or not is_real:
        raise ValueError(
            f"beta must be a real number, a 0-d JAX array or a name such as "
            f"'kullback-leibler', got {beta!r}"
        )
    if not math.isfinite(float(value)):
        raise ValueError(f"beta must be finite, got {beta!r}")
    return float(value)


def check_factors(W, H, shape: tuple[int, int], rank: int | None = None, *, dtype=None):
    """Starting factors (W n×r, H r×m) for V of ``shape``, as JAX arrays of ``dtype``.

    Checks shapes (r from W when ``rank`` is None), finite non-negative entries, and that
    neither factor is all zero (multiplicative updates keep a zero factor at 0, and the
    stopping test would call that converged).  Returns ``(W, H)``.
    """
    n, m = shape
    W = as_float_array(W, "W0")
    H = as_float_array(H, "H0")
    if dtype is not None:
        W, H = W.astype(dtype), H.astype(dtype)
    if rank is None and W.ndim != 2:
        raise ValueError(f"W0 must be a 2-D matrix (n×r), got shape {tuple(W.shape)}")
    r = W.shape[1] if rank is None else rank
    if W.shape != (n, r) or H.shape != (r, m):
        raise ValueError(
            f"init factors must have shapes W0 {(n, r)} and H0 {(r, m)} for V of shape "
            f"{tuple(shape)} and rank {r}; got W0 {tuple(W.shape)}, H0 {tuple(H.shape)}"
        )
    check_matrix(W, "W0")
    check_matrix(H, "H0")
    if _is_tracer(W) or _is_tracer(H):
        return W, H
    if not (np.asarray(W).any() and np.asarray(H).any()):
        raise ValueError(
            "init factors W0 and H0 must not be all zero (a zero factor stays zero); "
            "start from positive entries, e.g. init='nndsvda'"
        )
    return W, H
