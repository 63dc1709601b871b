"""Figures and tables of a stored run, drawn from its results only (``jnmf-figures``).

``render(run_dir, figures_out)`` re-validates the run's config (``config.json``), reloads every
stored task (arrays as NumPy arrays, the rest as plain Python values), and writes each of
``study.figures(results, config)`` as ``<study>_<figure>.png`` (hyphens of the study name
written as underscores: ``task_driven_digits_accuracy.png``) into ``RUN_DIR/figures`` (and
into ``figures_out`` when given), each of ``study.tables(...)`` as CSV and JSON into
``RUN_DIR/tables``, and any other files the study draws (``study.write_files``: the audio
study's resynthesized components as WAV) into ``RUN_DIR/files``.  Damaged task files are
named and left out (rerun ``jnmf-run``).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

from experiments.config import parse_config
from experiments.store import DamagedFile, RunStore, atomic_write


@dataclass
class Rendered:
    """What ``render`` wrote, and the problems it met (damaged files, missing results)."""

    figures: list[Path] = field(default_factory=list)
    tables: list[Path] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def load_results(store: RunStore, keys: list[str]) -> tuple[dict, list[str]]:
    """({key: result} of the stored tasks among ``keys``, problems); skipped tasks give
    ``{"skipped": reason}``."""
    results, problems = {}, []
    for key in keys:
        if not store.record_path(key).is_file():
            continue
        try:
            results[key] = store.load_result(key)
        except DamagedFile as err:
            problems.append(f"left out, damaged: {err} (rerun jnmf-run to recompute it)")
    return results, problems


def save_png(fig, path: Path, dpi: int = 110) -> Path:
    """Render a matplotlib ``Figure`` as PNG and write it atomically."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return atomic_write(path, lambda fh: fh.write(buf.getvalue()))


def render(run_dir: str | Path, figures_out: str | Path | None = None) -> Rendered:
    """Draw the figures and tables of the run at ``run_dir`` (see the module docstring)."""
    store = RunStore(run_dir)
    saved = store.config()
    raw = {
        "name": saved["name"],
        "description": saved.get("description", ""),
        "run": saved["run"],
        "study": saved["study_section"],
    }
    config = parse_config(raw)
    study = config.study_obj
    keys = [t.key for t in study.tasks(config.parsed)]
    results, problems = load_results(store, keys)
    out = Rendered(problems=problems)
    if not any("skipped" not in r for r in results.values()):
        out.problems.append(f"no finished task in {store.root}: run jnmf-run first")
        return out
    folders = [store.root / "figures"]
    if figures_out is not None:
        folders.append(Path(figures_out))
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    prefix = config.study.replace("-", "_")
    for name, fig in study.figures(results, config.parsed).items():
        for folder in folders:
            out.figures.append(save_png(fig, folder / f"{prefix}_{name}.png"))
    for name, rows in study.tables(results, config.parsed).items():
        out.tables += store.write_table(name, rows)
    files = store.root / "files"
    files.mkdir(exist_ok=True)
    out.files += study.write_files(results, config.parsed, files)
    return out
