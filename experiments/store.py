"""The results store: one folder per run, every file written atomically and checked on load.

Layout of ``<out>/<name>-<8-hex config hash>/``::

    config.toml           the config file as given (byte copy)
    config.json           the validated config (run settings after command-line overrides)
    metadata.json         provenance: versions, devices, precision, seeds, git commit, sessions
    .lock                 held (``flock``) by the one ``jnmf-run`` working in the folder
    tasks/<key>.npz       a finished task's arrays (absent when it has none)
    tasks/<key>.json      its record: status, JSON values, and the SHA-256 of the .npz
    figures/, tables/     drawn from the stored results (``experiments.render``)

A task is finished iff its ``.json`` loads, its own checksum matches, and the ``.npz`` it names
has the recorded SHA-256.  The ``.npz`` is written first, the ``.json`` last, each under a
temporary name (``.<name>.tmp-<pid>``), flushed, then renamed with ``os.replace`` (atomic on
POSIX): a run killed at any moment leaves finished tasks intact and no half-written file
under a real name.  A damaged file (truncated, garbage, edited) is reported by name and its
task counts as unfinished.  Temporary files are removed only when their process is gone.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import hashlib
import importlib.metadata
import io
import json
import os
import platform as py_platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

TMP_MARK = ".tmp-"
RECORD_FORMAT = 1


class StoreError(RuntimeError):
    """The run folder cannot be used (locked by another run, not a folder, …)."""


class DamagedFile(ValueError):
    """A stored file failed its load or checksum test; ``path`` names it."""

    def __init__(self, path: Path, why: str):
        super().__init__(f"{path}: {why}")
        self.path = path


# ---------------------------------------------------------------- atomic files


def atomic_write(path: str | Path, write: Callable[[io.BufferedWriter], None]) -> Path:
    """Write ``path`` through ``write(fh)`` on a temporary file, then rename it into place.

    If ``write`` raises (or the process is interrupted), the temporary file is removed and
    ``path`` is left as it was.
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
    return write_text(path, json.dumps(jsonable(obj), indent=2, sort_keys=True))


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (tuple, set, frozenset)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    return repr(obj)


def jsonable(obj: Any) -> Any:
    """``obj`` with NumPy scalars and arrays, tuples and paths made JSON-able (others → repr)."""
    return json.loads(json.dumps(obj, default=_json_default))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def split_result(result: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(arrays for the .npz, JSON values): NumPy and JAX arrays go to the .npz, the rest JSON."""
    if not isinstance(result, Mapping):
        raise TypeError(f"a task's result must be a dict, got {type(result).__name__}")
    arrays, values = {}, {}
    for name, value in result.items():
        if not isinstance(name, str):
            raise TypeError(f"result keys must be strings, got {name!r}")
        if hasattr(value, "__array__") and not isinstance(value, np.generic):
            array = np.asarray(value)
            if array.dtype == object:
                raise TypeError(f"result {name!r} is an object array; store numbers or lists")
            arrays[name] = array
        else:
            values[name] = value
    return arrays, jsonable(values)


# ---------------------------------------------------------------- the run folder


class RunStore:
    """The folder of one run.  ``RunStore(root)`` only names it; ``create`` makes it."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.tasks_dir = self.root / "tasks"
        self._lock_fh = None

    def create(self, config_text: str, config: Mapping[str, Any]) -> RunStore:
        """Make the folder (if needed) and write its config copies; call with the lock held."""
        self.tasks_dir.mkdir(parents=True, exist_ok=True)
        write_text(self.root / "config.toml", config_text)
        write_json(self.root / "config.json", config)
        return self

    # -- the lock
    def acquire(self, wait: bool = False, poll_s: float = 1.0) -> None:
        """Take the run folder's lock (``flock``, released by the OS if the process dies).

        Raises ``StoreError`` naming the holder's pid when another run holds it, unless
        ``wait``, which blocks until the other run ends.
        """
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise StoreError(
                f"cannot make the run folder {self.root}: a file is in the way"
            ) from None
        fh = open(self.root / ".lock", "a+")
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not wait:
                    fh.seek(0)
                    holder = fh.read().strip() or "unknown"
                    fh.close()
                    raise StoreError(
                        f"another jnmf-run (pid {holder}) is working in {self.root}; wait for "
                        "it to finish, or rerun with --wait to queue behind it"
                    ) from None
                time.sleep(poll_s)
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._lock_fh = fh

    def release(self) -> None:
        if self._lock_fh is not None:
            fcntl.flock(self._lock_fh, fcntl.LOCK_UN)
            self._lock_fh.close()
            self._lock_fh = None

    @contextlib.contextmanager
    def locked(self, wait: bool = False):
        self.acquire(wait)
        try:
            yield self
        finally:
            self.release()

    def clean_temporary(self) -> list[Path]:
        """Remove temporary files whose writing process is gone; returns them.

        A file of a live process (another run, or a figure being drawn) is left alone.
        """
        removed = []
        for folder in (self.root, self.tasks_dir, self.root / "figures", self.root / "tables"):
            if not folder.is_dir():
                continue
            for p in folder.iterdir():
                if not (p.name.startswith(".") and TMP_MARK in p.name):
                    continue
                pid = p.name.rsplit(TMP_MARK, 1)[1]
                if pid.isdigit() and _pid_alive(int(pid)):
                    continue
                p.unlink(missing_ok=True)
                removed.append(p)
        return removed

    # -- tasks
    def record_path(self, key: str) -> Path:
        return self.tasks_dir / f"{key}.json"

    def arrays_path(self, key: str) -> Path:
        return self.tasks_dir / f"{key}.npz"

    def save_task(self, key: str, status: str, result: Mapping[str, Any], **extra) -> None:
        """Store a task: ``result``'s arrays in ``<key>.npz``, the rest in ``<key>.json``."""
        arrays, values = split_result(result)
        record = {"format": RECORD_FORMAT, "key": key, "status": status, "values": values}
        record.update(jsonable(extra))
        npz = self.arrays_path(key)
        if arrays:
            atomic_write(npz, lambda fh: np.savez(fh, **arrays))
            record["npz_sha256"] = sha256_file(npz)
            record["arrays"] = sorted(arrays)
        else:
            npz.unlink(missing_ok=True)
            record["npz_sha256"] = None
            record["arrays"] = []
        body = json.dumps(record, sort_keys=True)
        record["sha256"] = hashlib.sha256(body.encode()).hexdigest()
        write_text(self.record_path(key), json.dumps(record, indent=1, sort_keys=True))

    def load_record(self, key: str) -> dict:
        """The task's JSON record, checked; raises ``FileNotFoundError`` or ``DamagedFile``."""
        path = self.record_path(key)
        text = path.read_text(errors="replace")
        try:
            record = json.loads(text)
        except json.JSONDecodeError as err:
            raise DamagedFile(path, f"not valid JSON ({err.msg} at char {err.pos})") from None
        if not isinstance(record, dict) or "sha256" not in record:
            raise DamagedFile(path, "not a task record (no checksum)")
        claimed = record.pop("sha256")
        body = json.dumps(record, sort_keys=True)
        if hashlib.sha256(body.encode()).hexdigest() != claimed:
            raise DamagedFile(path, "checksum mismatch: the record was altered or truncated")
        if record.get("key") != key:
            raise DamagedFile(path, f"record of task {record.get('key')!r}, not {key!r}")
        npz = self.arrays_path(key)
        if record.get("npz_sha256"):
            if not npz.is_file():
                raise DamagedFile(npz, "missing (its record names it)")
            if sha256_file(npz) != record["npz_sha256"]:
                raise DamagedFile(npz, "checksum mismatch: truncated or altered")
        return record

    def check_task(self, key: str) -> str | None:
        """The status of a stored task ("done", "skipped"), None if absent; ``DamagedFile``."""
        if not self.record_path(key).is_file():
            return None
        return self.load_record(key)["status"]

    def load_result(self, key: str) -> dict[str, Any]:
        """The task's result as stored: NumPy arrays and plain JSON values."""
        record = self.load_record(key)
        result = dict(record["values"])
        if record["arrays"]:
            path = self.arrays_path(key)
            try:
                with np.load(path, allow_pickle=False) as npz:
                    result.update({name: npz[name] for name in record["arrays"]})
            except (OSError, ValueError, KeyError) as err:
                raise DamagedFile(path, f"cannot be read: {err}") from None
        return result

    def task_keys(self) -> list[str]:
        """Keys of the stored task records (damaged or not), sorted."""
        if not self.tasks_dir.is_dir():
            return []
        return sorted(p.stem for p in self.tasks_dir.glob("*.json") if not p.name.startswith("."))

    # -- run-level files
    def config(self) -> dict:
        path = self.root / "config.json"
        if not path.is_file():
            raise FileNotFoundError(f"{self.root} is not a run folder (no config.json)")
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise DamagedFile(path, f"not valid JSON ({err.msg}); rerun jnmf-run") from None

    def config_text(self) -> str:
        return (self.root / "config.toml").read_text()

    def metadata(self) -> tuple[dict, str | None]:
        """(metadata, problem): a damaged ``metadata.json`` is moved aside and named."""
        path = self.root / "metadata.json"
        if not path.is_file():
            return {}, None
        try:
            data = json.loads(path.read_text(errors="replace"))
            if not isinstance(data, dict) or not isinstance(data.get("sessions", []), list):
                raise ValueError("not a metadata record")
            return data, None
        except ValueError as err:
            aside = path.with_name(f"metadata.damaged-{time.strftime('%Y%m%dT%H%M%S')}.json")
            os.replace(path, aside)
            why = err.msg if isinstance(err, json.JSONDecodeError) else str(err)
            return {}, f"{path} was damaged ({why}); moved to {aside.name}, starting a new one"

    def write_metadata(self, metadata: Mapping[str, Any]) -> None:
        write_json(self.root / "metadata.json", dict(metadata))

    def write_table(self, name: str, rows: Iterable[Mapping[str, Any]]) -> list[Path]:
        """``tables/<name>.csv`` and ``.json`` from a list of row dicts (columns in order)."""
        rows = [jsonable(dict(r)) for r in rows]
        columns: list[str] = []
        for row in rows:
            columns += [k for k in row if k not in columns]
        folder = self.root / "tables"
        folder.mkdir(exist_ok=True)
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _csv_value(row.get(k)) for k in columns})
        return [
            write_text(folder / f"{name}.csv", buf.getvalue()),
            write_json(folder / f"{name}.json", rows),
        ]


def _csv_value(v):
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.10g}"
    if isinstance(v, (list, dict)):
        return json.dumps(v)
    return v


# ---------------------------------------------------------------- provenance


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def git_state() -> dict | None:
    """Commit and dirty flag of the git checkout holding this package, if any."""
    here = str(Path(__file__).resolve().parent)
    try:
        head = subprocess.run(
            ["git", "-C", here, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", here, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=20,
        )
        return {"commit": head.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return None


def environment() -> dict:
    """Versions, devices, precision and git commit of this process (for ``metadata.json``)."""
    import jax

    devices = jax.devices()
    return {
        "jnmf": _version("jnmf"),
        "jax": jax.__version__,
        "jaxlib": _version("jaxlib"),
        "numpy": np.__version__,
        "equinox": _version("equinox"),
        "python": sys.version.split()[0],
        "os": py_platform.platform(),
        "backend": jax.default_backend(),
        "devices": [str(d) for d in devices],
        "device_kind": devices[0].device_kind,
        "x64": bool(jax.config.jax_enable_x64),
        "git": git_state(),
    }
