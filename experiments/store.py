"""The results store: one folder per run, every file written atomically.

Layout of ``<out>/<config name>-<8-hex config hash>/``::

    config.toml          the config file as given (byte copy)
    config.json          the validated config with defaults and command-line overrides
    metadata.json        versions, devices, precision, seeds, git commit, one record per session
    tasks/<task>.npz     one file per finished task: arrays plus an ``info`` JSON string
    summary.csv          one row per finished task, rebuilt from the task files

A task is finished if and only if its file exists.  Files are written under a temporary
name in the same folder, flushed to disk, then renamed with ``os.replace`` (atomic on POSIX),
so a run killed at any moment (even ``kill -9``) leaves only complete files; a rerun skips
the finished tasks and removes stale temporary files.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

TMP_MARK = ".tmp-"


def atomic_write(path: str | Path, write: Callable[[io.BufferedWriter], None]) -> Path:
    """Write ``path`` through ``write(fh)`` on a temporary file, then rename it into place.

    If ``write`` raises, the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda fh: fh.write(text.encode()))


def write_json(path: str | Path, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default))


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray) and obj.size <= 64:
        return obj.tolist()
    if isinstance(obj, (tuple, set)):
        return list(obj)
    return repr(obj)


def jsonable(obj: Any) -> Any:
    """``obj`` with NumPy scalars, small arrays and tuples made JSON-able (others → repr)."""
    return json.loads(json.dumps(obj, default=_json_default))


class RunStore:
    """The folder of one run; create with ``RunStore.create`` or open with ``RunStore(path)``."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.tasks_dir = self.root / "tasks"

    @classmethod
    def create(cls, out: str | Path, name: str, digest: str, config_text: str, config: dict):
        """Make (or reopen) ``<out>/<name>-<digest>`` and write its config copies."""
        store = cls(Path(out) / f"{name}-{digest}")
        store.tasks_dir.mkdir(parents=True, exist_ok=True)
        store.clean_temporary()
        write_text(store.root / "config.toml", config_text)
        write_json(store.root / "config.json", config)
        return store

    def clean_temporary(self) -> list[Path]:
        """Remove temporary files left by an interrupted run; returns them."""
        stale = [p for d in (self.root, self.tasks_dir) if d.is_dir() for p in d.iterdir()]
        stale = [p for p in stale if p.name.startswith(".") and TMP_MARK in p.name]
        for p in stale:
            p.unlink(missing_ok=True)
        return stale

    # -- tasks
    def task_path(self, task_id: str) -> Path:
        return self.tasks_dir / f"{task_id}.npz"

    def is_done(self, task_id: str) -> bool:
        return self.task_path(task_id).is_file()

    def save_task(self, task_id: str, info: Mapping[str, Any], arrays: Mapping[str, Any]) -> Path:
        """Store a finished task: ``arrays`` as .npz members, ``info`` as a JSON member."""
        if "info" in arrays:
            raise ValueError("'info' is reserved for the task's JSON record")
        members = {k: np.asarray(v) for k, v in arrays.items()}
        members["info"] = np.array(json.dumps(jsonable(dict(info)), sort_keys=True))
        return atomic_write(self.task_path(task_id), lambda fh: np.savez(fh, **members))

    def load_task(self, task_id: str) -> tuple[dict, dict[str, np.ndarray]]:
        """(info, arrays) of a finished task."""
        with np.load(self.task_path(task_id), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files if k != "info"}
            info = json.loads(str(npz["info"]))
        return info, arrays

    def task_ids(self) -> list[str]:
        """Ids of the finished tasks, sorted."""
        if not self.tasks_dir.is_dir():
            return []
        return sorted(p.stem for p in self.tasks_dir.glob("*.npz"))

    def infos(self) -> list[dict]:
        """The ``info`` record of every finished task."""
        return [self.load_task(t)[0] for t in self.task_ids()]

    # -- run-level files
    def config(self) -> dict:
        return json.loads((self.root / "config.json").read_text())

    def metadata(self) -> dict:
        path = self.root / "metadata.json"
        return json.loads(path.read_text()) if path.is_file() else {}

    def write_metadata(self, metadata: Mapping[str, Any]) -> None:
        write_json(self.root / "metadata.json", dict(metadata))

    def write_summary(self, rows: Iterable[Mapping[str, Any]], columns: list[str]) -> Path:
        """Write ``summary.csv`` with ``columns`` (missing values left empty)."""
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _csv_value(row.get(k)) for k in columns})
        return write_text(self.root / "summary.csv", buf.getvalue())


def _csv_value(v):
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.10g}"
    return v
