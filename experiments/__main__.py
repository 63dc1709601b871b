"""``jnmf-run CONFIG [options]`` (also ``python -m experiments CONFIG``): run a study.

Order matters: the ``[run]`` table (with command-line overrides) is read first, without
computing anything, so that JAX's platform and precision are set before JAX starts; then
the whole config is validated (nothing runs if it is invalid), the unfinished tasks run,
and the study's figures are drawn from the stored results.

Exit codes: 0 done, 1 some task failed (rerun to retry it), 2 invalid config or the run
could not start.
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
    parse_config,
    parse_run_settings,
    read_toml,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jnmf-run",
        description="Run a jnmf study from a TOML config into a resumable results folder.",
    )
    parser.add_argument("config", help="path of the study's TOML config")
    parser.add_argument("--platform", choices=PLATFORMS, help="override run.platform")
    parser.add_argument("--precision", choices=PRECISIONS, help="override run.precision")
    parser.add_argument("--out", help="override run.out (the folder holding run folders)")
    parser.add_argument("--force", action="store_true", help="recompute finished tasks")
    parser.add_argument("--quiet", action="store_true", help="no progress display")
    parser.add_argument("--no-figures", action="store_true", help="do not draw figures")
    parser.add_argument("--figures-out", help="folder for the figures (default: RUN_DIR/figures)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    overrides = {"platform": args.platform, "precision": args.precision, "out": args.out}
    try:
        raw = read_toml(args.config)
        settings = parse_run_settings(raw, overrides)
    except ConfigError as err:
        print(f"jnmf-run: invalid config {args.config}: {err}", file=sys.stderr)
        return 2

    from experiments.runner import RunError, run, setup_jax

    setup_jax(settings)
    try:
        config = parse_config(raw, overrides)
    except ConfigError as err:
        print(f"jnmf-run: invalid config {args.config}: {err}", file=sys.stderr)
        return 2
    try:
        report = run(
            config,
            config_text=Path(args.config).read_text(),
            force=args.force,
            quiet=args.quiet,
        )
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
    if not args.no_figures:
        from experiments.figures import draw

        try:
            for path in draw(report.run_dir, args.figures_out):
                print(f"figure: {path}")
        except RuntimeError as err:
            print(f"jnmf-run: no figures: {err}", file=sys.stderr)
    if report.failed:
        print(f"failed tasks (rerun to retry): {', '.join(report.failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
