"""Drawing helpers shared by studies: convergence curves with bands, montages of basis images.

Matplotlib is optional (``pip install 'jnmf[figures]'``) and imported only when drawing;
figures are bare ``matplotlib.figure.Figure`` objects rendered by Agg (no pyplot state, no
GUI backend).  Nothing here reads or writes files: ``experiments.render`` saves figures.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def new_figure(**kwargs):
    """A matplotlib ``Figure`` not attached to pyplot (rendered with Agg when saved)."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise RuntimeError(
            "drawing figures needs matplotlib: pip install 'jnmf[figures]'"
        ) from None
    return Figure(**kwargs)


@dataclass
class Curves:
    """Histories of one solver on one problem, pooled over seeds and restarts.

    ``iterations`` (k,) starts at 0; ``objective``/``kkt`` are (runs, k) with the starting
    point first (relative KKT = 1 there); ``seconds_per_iter`` is the median over tasks.
    """

    solver: str
    iterations: np.ndarray
    objective: np.ndarray
    kkt: np.ndarray
    seconds_per_iter: float
    compile_s: float
    restarts: int = 1

    @property
    def seconds(self) -> np.ndarray:
        return self.iterations * self.seconds_per_iter


def _band(ax, x, runs, label, color):
    """Median line over ``runs`` (rows) and, with several runs, a min-max band."""
    with warnings.catch_warnings():  # columns that are NaN in every run stay NaN (gaps)
        warnings.simplefilter("ignore", RuntimeWarning)
        med = np.nanmedian(runs, axis=0)
        lo, hi = np.nanmin(runs, axis=0), np.nanmax(runs, axis=0)
    n = runs.shape[0]
    ax.plot(x, med, color=color, lw=1.6, label=f"{label} ({n} runs)" if n > 1 else label)
    if n > 1:
        ax.fill_between(x, lo, hi, color=color, alpha=0.2, lw=0)


def convergence_figure(curves: Sequence[Curves], title: str, gap: bool, notes: Sequence[str] = ()):
    """2×2 panels: objective (or relative gap to the best f found) and relative KKT residual,
    each against iterations and against seconds; restarts and seeds as min-max bands.
    ``notes`` (e.g. skipped solvers and why) are listed under the panels."""
    restarts = max((c.restarts for c in curves), default=1)
    notes = list(notes)
    notes.insert(
        0,
        "seconds: wall time of the task's run (compile excluded, diagnostics included)"
        + (f", {restarts} restarts vmapped in one program" if restarts > 1 else ""),
    )
    height = 7.2 + 0.14 * len(notes)
    fig = new_figure(figsize=(10, height), layout="constrained")
    mosaic = [["obj_it", "obj_s"], ["kkt_it", "kkt_s"], ["notes", "notes"]]
    axes = fig.subplot_mosaic(mosaic, height_ratios=[1, 1, 0.04 * len(notes) + 0.02])
    f_star = min((np.nanmin(c.objective) for c in curves), default=np.nan)
    for i, c in enumerate(curves):
        color = f"C{i % 10}"
        if gap:
            floor = np.finfo(np.float32).eps
            y = np.maximum((c.objective - f_star) / abs(f_star), floor)
        else:
            y = c.objective
        for suffix, x in (("it", c.iterations), ("s", c.seconds)):
            _band(axes[f"obj_{suffix}"], x, y, c.solver, color)
            _band(axes[f"kkt_{suffix}"], x, c.kkt, c.solver, color)
    ylabel = "(f − f*) / f*,  f* = best f found" if gap else "objective f(W, H)"
    for suffix, xlabel in (("it", "iteration"), ("s", "seconds")):
        axes[f"obj_{suffix}"].set_ylabel(ylabel)
        axes[f"kkt_{suffix}"].set_ylabel("KKT residual ‖min(X, ∇f)‖ / start")
        for row in ("obj", "kkt"):
            ax = axes[f"{row}_{suffix}"]
            ax.set_yscale("log")
            ax.set_xlabel(xlabel)
            ax.grid(True, which="both", alpha=0.3)
    if curves:
        axes["obj_it"].legend(fontsize=8)
    fig.suptitle(title)
    axes["notes"].set_axis_off()
    axes["notes"].text(0, 1, "\n".join(notes), fontsize=7, va="top", color="0.3")
    return fig


def montage(images: np.ndarray, ncols: int | None = None, pad: int = 2) -> np.ndarray:
    """Tile ``images`` (k, h, w) into one array; each image scaled to [0, 1] by its max."""
    k, h, w = images.shape
    ncols = ncols or int(np.ceil(np.sqrt(k)))
    nrows = int(np.ceil(k / ncols))
    canvas = np.ones((nrows * (h + pad) + pad, ncols * (w + pad) + pad))
    for i, img in enumerate(images):
        r, c = divmod(i, ncols)
        top, left = pad + r * (h + pad), pad + c * (w + pad)
        peak = img.max()
        canvas[top : top + h, left : left + w] = img / peak if peak > 0 else img
    return canvas


def basis_figure(
    panels: Sequence[tuple[str, np.ndarray]], image_shape: tuple[int, int], title: str
):
    """Side by side montages of W's columns reshaped to ``image_shape`` (row-major), one
    per (label, W) panel; dark = 0, white = the column's largest entry."""
    fig = new_figure(figsize=(5.2 * len(panels), 5.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, (label, W) in zip(axes, panels, strict=True):
        images = np.asarray(W).T.reshape(-1, *image_shape)
        ax.imshow(montage(images), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(label)
        ax.set_axis_off()
    fig.suptitle(title)
    return fig
