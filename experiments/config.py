"""Run configs: ``configs/<name>.toml`` read with ``tomllib``, validated before anything runs.

    name = "parts"                 # the study (a name in experiments.registry.STUDIES)
    description = "…"

    [run]
    platform = "auto"              # cpu | gpu | tpu | auto
    precision = "float32"          # float32 | float64
    out = "results"                # the folder holding run folders

    [study]                        # the study's own keys, checked by Study.parse

TOML cannot hold both a key ``study = "parts"`` and a table ``[study]``, so the study is named
by ``name`` alone; the run folder is ``<out>/<name>-<hash of the settings>``, so variants of
one study (other ``[study]`` values) get folders of their own.

Every problem raises ``ConfigError`` (a ``StudyConfigError``) whose message names the key and
what to do.  ``parse_run_settings`` reads only ``[run]`` and imports nothing heavy, so that the
CLI can set JAX's platform and precision before JAX starts.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from experiments.registry import UnknownStudy, get_study
from experiments.study import Study, StudyConfigError
from experiments.validate import choices, parse_table, to_plain, unknown_key

PLATFORMS = ("auto", "cpu", "gpu", "tpu")
PRECISIONS = ("float32", "float64")


class ConfigError(StudyConfigError):
    """An invalid config file: the message names the key and what is allowed."""


@dataclass(frozen=True)
class RunSettings:
    """Where and how the run computes; overridable on the command line."""

    platform: str = field(default="auto", metadata=choices(*PLATFORMS))
    precision: str = field(default="float32", metadata=choices(*PRECISIONS))
    out: str = "results"


@dataclass(frozen=True)
class Config:
    """A validated config: ``section`` is the raw ``[study]`` table, ``parsed`` its
    ``Study.parse`` result, ``study_obj`` the study instance."""

    name: str
    study: str
    description: str
    run: RunSettings
    section: Mapping[str, Any]
    parsed: Any = field(compare=False)
    study_obj: Study = field(compare=False, repr=False)

    def to_dict(self) -> dict:
        """A JSON-able record of every setting (the ``[study]`` table as given)."""
        return {
            "name": self.name,
            "study": self.study,
            "description": self.description,
            "run": to_plain(self.run),
            "study_section": to_plain(self.section),
            "parsed": to_plain(self.parsed) if _is_plain(to_plain(self.parsed)) else None,
        }

    def digest(self) -> str:
        """A short hash of what changes results: study, precision, platform, ``[study]``."""
        plain = {
            "name": self.name,
            "study": self.study,
            "platform": self.run.platform,
            "precision": self.run.precision,
            "section": to_plain(self.section),
        }
        text = json.dumps(plain, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:8]

    @property
    def run_dir(self) -> Path:
        """The run folder: ``<run.out>/<name>-<digest>``."""
        return Path(self.run.out) / f"{self.name}-{self.digest()}"


def _is_plain(obj) -> bool:
    try:
        json.dumps(obj)
    except (TypeError, ValueError):
        return False
    return True


def read_toml(path: str | Path) -> dict:
    """The TOML file as a dict; a missing file or a syntax error becomes ``ConfigError``."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {str(path)!r} not found") from None
    except IsADirectoryError:
        raise ConfigError(f"config {str(path)!r} is a folder, not a TOML file") from None
    except tomllib.TOMLDecodeError as err:
        hint = ""
        if "overwrite" in str(err):
            hint = (
                " (a top-level `study = ...` next to a [study] table? the study is named by "
                "`name`: remove the `study = ...` line)"
            )
        raise ConfigError(f"{path}: invalid TOML: {err}{hint}") from None


def parse_run_settings(raw: Mapping, overrides: Mapping[str, Any] | None = None) -> RunSettings:
    """The ``[run]`` table with command-line ``overrides`` applied (None values ignored)."""
    table = raw.get("run", {})
    if not isinstance(table, dict):
        raise ConfigError("[run] must be a table")
    table = {**table, **{k: v for k, v in (overrides or {}).items() if v is not None}}
    try:
        settings = RunSettings(**parse_table(RunSettings, table, "run"))
    except StudyConfigError as err:
        raise ConfigError(str(err)) from None
    check_out_path(settings.out)
    return settings


def check_out_path(out: str | Path) -> None:
    """Refuse an output folder that cannot be created: one of its parents is a regular file."""
    path = Path(out)
    if not str(out).strip():
        raise ConfigError("run.out must be a folder path, got an empty string")
    for parent in [path, *path.parents]:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(
                    f"run.out = {str(out)!r} lies under {str(parent)!r}, which is a regular "
                    "file, not a folder; choose another run.out (or --out)"
                )
            break


def parse_config(raw: Mapping, overrides: Mapping[str, Any] | None = None) -> Config:
    """Validate a whole config given as a dict (a parsed TOML document)."""
    allowed = {"name", "description", "run", "study"}
    if isinstance(raw.get("study"), str):
        raise ConfigError(
            f"study = {raw['study']!r}: the study is named by `name` (TOML cannot hold both a key "
            "`study` and a table [study]); remove this line and put the study's keys in [study]"
        )
    for key in raw:
        if key not in allowed:
            raise ConfigError(str(unknown_key(key, "", allowed)))
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip() or "/" in name or name.startswith("."):
        raise ConfigError(f"name must be a study name (a string without '/'), got {name!r}")
    study_name = name
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise ConfigError(f"description must be a string, got {description!r}")
    run = parse_run_settings(raw, overrides)
    try:
        study_obj = get_study(study_name)
    except UnknownStudy as err:
        raise ConfigError(str(err)) from None
    section = raw.get("study", {})
    if not isinstance(section, dict):
        raise ConfigError(f"[study] must be a table, got {type(section).__name__}")
    try:
        parsed = study_obj.parse(section)
    except StudyConfigError as err:
        raise ConfigError(f"[study] of study {study_name!r}: {err}") from None
    return Config(name, study_name, description, run, dict(section), parsed, study_obj)


def load_config(path: str | Path, overrides: Mapping[str, Any] | None = None) -> Config:
    """Read and validate the config file at ``path``."""
    return parse_config(read_toml(path), overrides)
