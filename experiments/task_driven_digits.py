"""Old import path of the task-driven digits computation, kept for ``tests/test_nn.py``:
the study now lives in ``experiments.studies.task_driven_digits``."""

from experiments.studies.task_driven_digits import run

__all__ = ["run"]
