"""Command lines: ``jnmf-run CONFIG`` (also ``python -m experiments CONFIG``) and
``jnmf-figures RUN_DIR``.

``jnmf-run`` reads ``[run]`` first (with command-line overrides) without importing JAX, sets
JAX's platform and precision, validates the whole config (nothing runs if it is invalid), runs
the unfinished tasks, then draws the figures from the stored results.

Exit codes: 0 done; 1 a task failed (rerun to retry it) or every task was skipped; 2 invalid
config, or the run could not start (locked, too many tasks without --yes, data missing);
130 interrupted (finished tasks are kept).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from experiments.config import (
    PLATFORMS,
    PRECISIONS,
    ConfigError,
    load_config,
    parse_config,
    parse_run_settings,
    read_toml,
)
from experiments.render import render
from experiments.runner import RunError, run, setup_jax
from experiments.store import DamagedFile
from experiments.study import StudyConfigError


def run_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jnmf-run",
        description="Run a jnmf study from a TOML config into a resumable results folder.",
    )
    parser.add_argument("config", help="path of the study's TOML config (configs/<study>.toml)")
    parser.add_argument("--platform", choices=PLATFORMS, help="override run.platform")
    parser.add_argument("--precision", choices=PRECISIONS, help="override run.precision")
    parser.add_argument("--out", help="override run.out (the folder holding run folders)")
    parser.add_argument("--force", action="store_true", help="recompute finished tasks")
    parser.add_argument("--yes", action="store_true", help="allow more than 10 000 tasks")
    parser.add_argument(
        "--wait", action="store_true", help="if another run holds the folder, wait for it"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress display")
    parser.add_argument("--no-figures", action="store_true", help="do not draw figures")
    parser.add_argument("--figures-out", help="also write the figures here (e.g. paper_figures/)")
    return parser


def run_main(argv: Sequence[str] | None = None) -> int:
    """``jnmf-run``: see the module docstring."""
    args = run_parser().parse_args(argv)
    overrides = {"platform": args.platform, "precision": args.precision, "out": args.out}
    try:
        raw = read_toml(args.config)
        settings = parse_run_settings(raw, overrides)
        setup_jax(settings)
        config = parse_config(raw, overrides)
    except StudyConfigError as err:
        print(f"jnmf-run: invalid config {args.config}: {err}", file=sys.stderr)
        return 2
    try:
        report = run(
            config,
            config_text=Path(args.config).read_text(),
            force=args.force,
            yes=args.yes,
            wait=args.wait,
            quiet=args.quiet,
        )
    except StudyConfigError as err:
        print(f"jnmf-run: invalid config {args.config}: {err}", file=sys.stderr)
        return 2
    except RunError as err:
        print(f"jnmf-run: cannot run {args.config}: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("jnmf-run: interrupted; finished tasks are kept, rerun to resume", file=sys.stderr)
        return 130
    print(
        f"{len(report.computed)} computed, {len(report.resumed)} resumed, "
        f"{len(report.skipped)} skipped, {len(report.failed)} failed "
        f"in {report.wall_s:.1f} s; results in {report.run_dir}"
    )
    if not args.no_figures and report.n_done:
        _print_rendered(render(report.run_dir, args.figures_out), "jnmf-run")
    if report.failed:
        print(f"failed tasks (rerun to retry): {', '.join(report.failed)}", file=sys.stderr)
    elif not report.n_done:
        print("jnmf-run: every task was skipped; nothing was computed", file=sys.stderr)
    return report.exit_code


def _print_rendered(rendered, prog: str) -> None:
    for path in rendered.figures + rendered.tables + rendered.files:
        print(f"wrote {path}")
    for problem in rendered.problems:
        print(f"{prog}: {problem}", file=sys.stderr)


def resolve_run_dir(target: str) -> Path:
    """A run folder given directly, or the run folder of a config file (.toml)."""
    path = Path(target)
    if path.suffix == ".toml" and path.is_file():
        return load_config(path).run_dir
    return path


def figures_main(argv: Sequence[str] | None = None) -> int:
    """``jnmf-figures RUN_DIR [--figures-out DIR]``: redraw a run's figures and tables."""
    parser = argparse.ArgumentParser(
        prog="jnmf-figures", description="Draw a run's figures and tables from its results."
    )
    parser.add_argument("run_dir", help="a run folder, or a config .toml (its run folder)")
    parser.add_argument(
        "--figures-out", "--out", dest="figures_out", help="also write the PNGs here"
    )
    args = parser.parse_args(argv)
    try:
        rendered = render(resolve_run_dir(args.run_dir), args.figures_out)
    except (FileNotFoundError, DamagedFile, ConfigError, StudyConfigError, RuntimeError) as err:
        print(f"jnmf-figures: error: {err}", file=sys.stderr)
        return 2
    _print_rendered(rendered, "jnmf-figures")
    return 0 if rendered.figures or rendered.tables else 1


if __name__ == "__main__":
    sys.exit(run_main())
