"""What every jnmf estimator shares with scikit-learn's protocol: parameters by name, the
printed form, tags, output feature names and the output container.

A subclass keeps its constructor arguments as attributes of the same names (scikit-learn's
rule) and defines ``_fitted()`` (the fitted components, or the not-fitted error).
"""

from __future__ import annotations

import inspect

import numpy as np

from jnmf.estimator import _output


class ScikitLearnProtocol:
    """``get_params``/``set_params``, ``__repr__``, ``__sklearn_tags__``,
    ``get_feature_names_out`` and ``set_output`` for a non-negative transformer."""

    @classmethod
    def _get_param_names(cls) -> list[str]:
        params = inspect.signature(cls.__init__).parameters.values()
        return sorted(p.name for p in params if p.name != "self")

    def get_params(self, deep: bool = True) -> dict:
        """The constructor arguments, as given (scikit-learn's convention)."""
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params):
        """Set constructor arguments by name; returns self."""
        valid = self._get_param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(
                    f"Invalid parameter {name!r} for estimator {type(self).__name__}; "
                    f"valid parameters are {valid}"
                )
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        default = {
            p.name: p.default for p in inspect.signature(type(self).__init__).parameters.values()
        }
        changed = [
            f"{k}={v!r}"
            for k, v in self.get_params().items()
            if not (v is default[k] or (type(v) is type(default[k]) and v == default[k]))
        ]
        return f"{type(self).__name__}({', '.join(changed)})"

    def __sklearn_tags__(self):
        from sklearn.utils import InputTags, Tags, TargetTags, TransformerTags

        return Tags(
            estimator_type=None,
            target_tags=TargetTags(required=False),
            transformer_tags=TransformerTags(preserves_dtype=["float64", "float32"]),
            input_tags=InputTags(sparse=True, positive_only=True),
            requires_fit=True,
        )

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Names of the output columns: the class name in lower case and the component's
        index (``nmf0, nmf1, …``)."""
        self._fitted()
        return _output.feature_names_out(self, input_features)

    def set_output(self, *, transform=None):
        """Container of ``transform``/``fit_transform``: "default", "pandas", "polars" or
        None (unchanged); returns self."""
        _output.check_container(transform)
        if transform is not None:
            self._sklearn_output_config = {"transform": transform}
        return self
