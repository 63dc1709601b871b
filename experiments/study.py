"""What a study is: an object that owns its computation, the runner only schedules it.

A study turns its validated config section into tasks, computes one task at a time on data it
loads once, and draws figures (and tables) from the stored results:

    config = study.parse(section)            # the [study] table of configs/<name>.toml
    data = study.load(config)                # once per run, only if some task is unfinished
    for task in study.tasks(config):
        result = study.compute(task, data)   # {name: ndarray | float | int | str | list}
    figures = study.figures(results, config) # {name: matplotlib Figure}
    tables = study.tables(results, config)   # {name: list of row dicts} (CSV/JSON)

``results`` maps each task's ``key`` to the dict its ``compute`` returned (as reloaded from
the store: NumPy arrays and plain scalars).  Everything here is a leaf: it imports nothing
from ``experiments`` and nothing from ``jnmf``.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar


class StudyConfigError(ValueError):
    """A study's config section is invalid; the message says which key and what to do."""


class SkipTask(Exception):
    """Raised by ``compute`` when a task's combination cannot be computed (e.g. a solver that
    does not support β); the runner stores it as skipped with the message as the reason, and
    ``figures``/``tables`` receive ``{"skipped": reason}`` as its result."""


@dataclass(frozen=True)
class Task:
    """One unit of work: ``key`` is unique in the run and safe as a file name."""

    key: str
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.key


class Study(abc.ABC):
    """Abstract base of every study (see the module docstring for the call order)."""

    name: ClassVar[str]
    description: ClassVar[str] = ""

    @abc.abstractmethod
    def parse(self, section: Mapping[str, Any]) -> Any:
        """Validate the ``[study]`` table; return a frozen config (raise ``StudyConfigError``)."""

    @abc.abstractmethod
    def tasks(self, config: Any) -> list[Task]:
        """The tasks of a run, in the order they are computed."""

    def load(self, config: Any) -> Any:
        """Data shared by every task (real data is loaded here, once); None by default."""
        return None

    @abc.abstractmethod
    def compute(self, task: Task, data: Any) -> dict[str, Any]:
        """The result of one task: arrays and JSON-able scalars, strings and lists."""

    def figures(self, results: Mapping[str, Mapping[str, Any]], config: Any) -> dict[str, Any]:
        """Figures drawn from every finished task's result; none by default."""
        return {}

    def tables(
        self, results: Mapping[str, Mapping[str, Any]], config: Any
    ) -> dict[str, list[dict]]:
        """Tables (lists of rows) drawn from the results; none by default."""
        return {}

    def write_files(self, results: Mapping[str, Mapping[str, Any]], config: Any, folder) -> list:
        """Other files drawn from the results (e.g. audio), written into ``folder`` (the run
        folder's ``files/``); returns their paths.  None by default."""
        return []
