"""Study names → their classes, as ``"module:Class"`` strings imported only when used.

A leaf: it imports nothing from ``experiments`` at import time, so any module may read the
names without pulling in a study (or JAX).  A study joins by one line in ``STUDIES``; a
registered module that does not exist yet fails only when that study is used, with a
message naming the module.
"""

from __future__ import annotations

import importlib

STUDIES: dict[str, str] = {
    "quickstart": "experiments.studies.quickstart:QuickstartStudy",
    "convergence": "experiments.studies.convergence:ConvergenceStudy",
    "task-driven-digits": "experiments.studies.task_driven_digits:TaskDrivenDigitsStudy",
    "brunet": "experiments.studies.brunet:BrunetStudy",
    "parts": "experiments.studies.parts:PartsStudy",
    "sparsity": "experiments.studies.sparsity:SparsityStudy",
    "topics": "experiments.studies.topics:TopicsStudy",
    "noise-models": "experiments.studies.noise_models:NoiseModelsStudy",
    "mm-vs-heuristic": "experiments.studies.mm_heuristic:MMHeuristicStudy",
    "kkt": "experiments.studies.kkt:KKTStudy",
    "unmixing": "experiments.studies.unmixing:UnmixingStudy",
    "audio": "experiments.studies.audio:AudioStudy",
}


class UnknownStudy(LookupError):
    """A study name that is not registered, or whose module or class cannot be imported."""


def study_names() -> tuple[str, ...]:
    return tuple(sorted(STUDIES))


def load_study_class(name: str) -> type:
    """The class registered as ``name`` (its module imported now)."""
    if name not in STUDIES:
        raise UnknownStudy(f"study = {name!r} is unknown; use one of: {', '.join(study_names())}")
    module_name, _, class_name = STUDIES[name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name and module_name.startswith(err.name):
            raise UnknownStudy(
                f"study {name!r} is registered as {STUDIES[name]} but module {module_name} "
                "does not exist (yet); pick another study or add the module"
            ) from None
        raise
    try:
        return getattr(module, class_name)
    except AttributeError:
        raise UnknownStudy(
            f"study {name!r}: module {module_name} has no class {class_name}"
        ) from None


def get_study(name: str):
    """A fresh instance of the study registered as ``name``."""
    return load_study_class(name)()
