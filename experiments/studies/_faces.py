"""ORL faces for the ``parts`` and ``sparsity`` studies: preprocessing, measures and montages.

* ``lee_seung_preprocess``: Lee & Seung's (1999) scaling of each face (column of V) to
  mean 0.25 and standard deviation 0.25, then clipping to [0, 1].
* ``load_faces``: the 400 ORL faces (``jnmf.data.load("orl_faces")``), optionally averaged
  over ``factor``×``factor`` pixel blocks, preprocessed, in JAX's default float dtype (float32
  unless ``jax_enable_x64`` is on, which the runner sets from ``run.precision``).
* Measures of a basis B (n×r, one image per column) and its encodings E (r×m):
  ``unit_columns`` (scale moved from B into E so that comparisons do not depend on it),
  ``near_zero_fraction``, ``relative_error``.
* ``draw_montage``: basis images tiled on a grid, in the style of Lee & Seung's Figure 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import numpy as np

import jnmf
from experiments.figures import new_figure  # noqa: F401  (shared by the studies)

ORL_SHAPE = (112, 92)


@dataclass(frozen=True)
class Faces:
    """Preprocessed faces: ``V`` (pixels × faces) and the shape of one image."""

    V: np.ndarray
    image_shape: tuple[int, int]
    labels: np.ndarray


def lee_seung_preprocess(V: np.ndarray) -> np.ndarray:
    """Each column v ↦ clip(0.25 + 0.25 (v − mean v) / std v, 0, 1) (Lee & Seung 1999).

    Raises ``ValueError`` for a constant column (its standard deviation is 0).
    """
    V = np.asarray(V, np.float64)
    if V.ndim != 2:
        raise ValueError(f"V must be a matrix (pixels × images), got shape {V.shape}")
    std = V.std(axis=0)
    if np.any(~np.isfinite(V)):
        raise ValueError("V has NaN or infinite pixels; clean the images first")
    flat = np.flatnonzero(std == 0)
    if flat.size:
        raise ValueError(
            f"image column(s) {flat[:5].tolist()} are constant: they cannot be scaled to "
            "standard deviation 0.25; drop them first"
        )
    scaled = 0.25 + 0.25 * (V - V.mean(axis=0)) / std
    return np.clip(scaled, 0.0, 1.0)


def block_mean(V: np.ndarray, image_shape: tuple[int, int], factor: int):
    """Average ``factor``×``factor`` pixel blocks of every image (a crop drops the remainder).

    Returns (V', image_shape') with V' of shape (h'·w', m), h' = h // factor, w' = w // factor.
    """
    if factor < 1:
        raise ValueError(f"downsample factor must be ≥ 1, got {factor}")
    height, width = image_shape
    if factor == 1:
        return V, image_shape
    h, w = height // factor, width // factor
    images = V.reshape(height, width, -1)[: h * factor, : w * factor]
    small = images.reshape(h, factor, w, factor, -1).mean(axis=(1, 3))
    return small.reshape(h * w, -1), (h, w)


def load_faces(downsample: int = 1) -> Faces:
    """The 400 ORL faces, block-averaged by ``downsample`` and preprocessed as Lee & Seung's."""
    data = jnmf.data.load("orl_faces")
    V, shape = block_mean(data.V, tuple(data.meta["image_shape"]), downsample)
    dtype = jax.dtypes.canonicalize_dtype(np.float64)
    return Faces(
        V=lee_seung_preprocess(V).astype(dtype),
        image_shape=tuple(int(s) for s in shape),
        labels=np.asarray(data.meta["labels"]),
    )


def unit_columns(basis: np.ndarray, encodings: np.ndarray):
    """B D⁻¹ and D E with D = diag(‖B[:, k]‖₂): the same product, unit-norm basis images.

    Hoyer sparseness of a basis image does not depend on its scale, but the sparseness of an
    encoding (a column of E) does; normalizing B first makes encodings comparable across
    methods (PCA's components already have unit norm).  Zero columns are left as they are.
    """
    basis = np.asarray(basis, np.float64)
    norms = np.linalg.norm(basis, axis=0)
    scale = np.where(norms > 0, norms, 1.0)
    return basis / scale, np.asarray(encodings, np.float64) * scale[:, None]


def near_zero_fraction(basis: np.ndarray, threshold: float) -> np.ndarray:
    """Per column k: the fraction of pixels i with |B_ik| ≤ threshold · max_i |B_ik|."""
    magnitude = np.abs(np.asarray(basis, np.float64))
    peak = magnitude.max(axis=0)
    return np.mean(magnitude <= threshold * peak, axis=0)


def relative_error(V: np.ndarray, approximation: np.ndarray) -> float:
    """‖V − V̂‖_F / ‖V‖_F."""
    V = np.asarray(V, np.float64)
    return float(np.linalg.norm(V - approximation) / np.linalg.norm(V))


def hoyer(x: np.ndarray, axis: int) -> np.ndarray:
    """Hoyer sparseness (``jnmf.sparseness``) as a float64 NumPy array."""
    return np.asarray(jnmf.sparseness(np.asarray(x), axis=axis), np.float64)


def tile(basis: np.ndarray, image_shape: tuple[int, int], ncols: int | None = None):
    """The columns of ``basis`` as images on a grid, each divided by its largest |value|.

    Returns a 2-D array with NaN in the one-pixel gaps and the unused cells.
    """
    basis = np.asarray(basis, np.float64)
    count = basis.shape[1]
    ncols = ncols or math.ceil(math.sqrt(count))
    nrows = math.ceil(count / ncols)
    height, width = image_shape
    canvas = np.full((nrows * (height + 1) - 1, ncols * (width + 1) - 1), np.nan)
    for k in range(count):
        image = basis[:, k].reshape(height, width)
        peak = np.abs(image).max()
        row, col = divmod(k, ncols)
        top, left = row * (height + 1), col * (width + 1)
        canvas[top : top + height, left : left + width] = image / (peak if peak > 0 else 1.0)
    return canvas


def draw_montage(ax, basis, image_shape, title: str, signed: bool = False, ncols=None):
    """Tile ``basis`` on ``ax``: non-negative images in grey (0 white, peak black), signed
    ones (PCA) on a red–blue scale centred at 0."""
    canvas = tile(basis, image_shape, ncols)
    if signed:
        ax.imshow(canvas, cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    else:
        ax.imshow(canvas, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


class Section:
    """Typed reads of a ``[study]`` table with ``StudyConfigError`` messages naming the key."""

    def __init__(self, section, error, allowed):
        unknown = sorted(set(section) - set(allowed))
        if unknown:
            raise error(f"unknown [study] key(s) {unknown}; allowed: {sorted(allowed)}")
        self.section, self.error = section, error

    def integer(self, key, default, minimum, maximum=None):
        value = self.section.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(f"[study] {key} must be an integer, got {value!r}")
        if value < minimum or (maximum is not None and value > maximum):
            upper = "" if maximum is None else f" and ≤ {maximum}"
            raise self.error(f"[study] {key} must be ≥ {minimum}{upper}, got {value}")
        return value

    def real(self, key, default, minimum, maximum=None, open_low=False):
        return self._check_real(key, self.section.get(key, default), minimum, maximum, open_low)

    def reals(self, key, default, minimum, maximum=None, open_low=False):
        values = self.section.get(key, default)
        if not isinstance(values, list | tuple):
            raise self.error(f"[study] {key} must be a list of numbers, got {values!r}")
        checked = tuple(self._check_real(key, v, minimum, maximum, open_low) for v in values)
        if len(set(checked)) != len(checked):
            raise self.error(f"[study] {key} has repeated values: {list(checked)}")
        return checked

    def choice(self, key, default, options):
        value = self.section.get(key, default)
        if value not in options:
            raise self.error(f"[study] {key} must be one of {sorted(options)}, got {value!r}")
        return value

    def _check_real(self, key, value, minimum, maximum, open_low):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(f"[study] {key} must be a number, got {value!r}")
        value = float(value)
        low_ok = value > minimum if open_low else value >= minimum
        if not math.isfinite(value) or not low_ok or (maximum is not None and value > maximum):
            low = f"> {minimum}" if open_low else f"≥ {minimum}"
            upper = "" if maximum is None else f" and ≤ {maximum}"
            raise self.error(f"[study] {key}: each value must be finite, {low}{upper}; got {value}")
        return value
