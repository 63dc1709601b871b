"""Study ``sparsity``: two roads to sparse faces — L1 penalties and Hoyer's constraints.

On the ORL faces (preprocessed as Lee & Seung's, block-averaged by ``downsample``), with the
Frobenius loss ½‖V − WH‖² at rank r:

* ``nmf``: no penalty, the reference;
* the L1 path: + λ‖W‖₁ + ½μ‖H‖² for λ in ``l1_W``, and + λ‖H‖₁ + ½μ‖W‖² for λ in ``l1_H``
  (multiplicative updates).  The ridge μ (``ridge``) on the other factor is what makes the
  penalty bite: W → cW, H → H/c leaves WH unchanged and drives λ‖W‖₁ to 0 as c → 0, so with
  μ = 0 the "sparse" fit only shrinks W and inflates H (measured on these faces: λ from 1 to 30
  moved W's mean sparseness only from 0.476 to 0.484 while max W fell from 0.10 to 0.004);
* Hoyer's (2004) constrained NMF (``jnmf.SparseHoyer``): every column of W projected to
  sparseness s for s in ``hoyer_W``, every row of H for s in ``hoyer_H``.

Per fit: the Hoyer sparseness s(x) = (√n − ‖x‖₁/‖x‖₂)/(√n − 1) of every column of W and
every row of H (the quantities Hoyer's constraints fix), the number of dead components
(‖W_k‖ or ‖H_k‖ ≤ 1e-6 of the largest; their sparseness is left out of the means), the
fraction of near-zero pixels of W (|W_ik| ≤ τ max_i W_ik), and ‖V − WH‖_F/‖V‖_F.  The claims:
Hoyer's targets are met (to ``tolerance``), and the basis images localize as sparseness grows.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

import jnmf
from experiments.studies import _faces
from experiments.study import Study, StudyConfigError, Task

DEAD = 1e-6


@dataclass(frozen=True)
class SparsityConfig:
    rank: int = 25
    downsample: int = 2
    max_iter: int = 1000
    seed: int = 0
    l1_W: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)
    l1_H: tuple[float, ...] = (1.0, 3.0, 10.0)
    ridge: float = 1.0
    hoyer_W: tuple[float, ...] = (0.6, 0.7, 0.8, 0.9)
    hoyer_H: tuple[float, ...] = (0.7,)
    tolerance: float = 1e-3
    zero_threshold: float = 0.01


def _name(value: float) -> str:
    """A file-safe spelling of a number: 0.75 → 0p75."""
    return f"{value:g}".replace(".", "p").replace("-", "m")


def task_list(config: SparsityConfig) -> list[Task]:
    """(key, kind, value) for every fit, the reference first."""
    specs = [("nmf", "nmf", 0.0)]
    specs += [(f"l1W-{_name(v)}", "l1_W", v) for v in config.l1_W]
    specs += [(f"l1H-{_name(v)}", "l1_H", v) for v in config.l1_H]
    specs += [(f"hoyerW-{_name(v)}", "hoyer_W", v) for v in config.hoyer_W]
    specs += [(f"hoyerH-{_name(v)}", "hoyer_H", v) for v in config.hoyer_H]
    shared = {k: v for k, v in asdict(config).items() if not isinstance(v, tuple)}
    return [Task(key, {"kind": kind, "value": value, **shared}) for key, kind, value in specs]


class SparsityStudy(Study):
    """The L1 path and Hoyer's sparseness targets on faces (see the module docstring)."""

    name = "sparsity"
    description = "ORL faces: L1 path and Hoyer-constrained NMF, sparseness vs error, bases"

    def parse(self, section: Mapping[str, Any]) -> SparsityConfig:
        read = _faces.Section(section, StudyConfigError, SparsityConfig.__dataclass_fields__)
        d = SparsityConfig()
        config = SparsityConfig(
            rank=read.integer("rank", d.rank, 1, 400),
            downsample=read.integer("downsample", d.downsample, 1, 46),
            max_iter=read.integer("max_iter", d.max_iter, 1),
            seed=read.integer("seed", d.seed, 0),
            l1_W=read.reals("l1_W", list(d.l1_W), 0.0, open_low=True),
            l1_H=read.reals("l1_H", list(d.l1_H), 0.0, open_low=True),
            ridge=read.real("ridge", d.ridge, 0.0),
            hoyer_W=read.reals("hoyer_W", list(d.hoyer_W), 0.0, 1.0),
            hoyer_H=read.reals("hoyer_H", list(d.hoyer_H), 0.0, 1.0),
            tolerance=read.real("tolerance", d.tolerance, 0.0, 1.0, open_low=True),
            zero_threshold=read.real("zero_threshold", d.zero_threshold, 0.0, 1.0, True),
        )
        if config.ridge == 0.0 and (config.l1_W or config.l1_H):
            raise StudyConfigError(
                "[study] ridge = 0 makes an L1 penalty on one factor meaningless (W → cW, "
                "H → H/c drives it to 0 without sparsifying anything); set ridge > 0 (1.0)"
            )
        return config

    def tasks(self, config: SparsityConfig) -> list[Task]:
        return task_list(config)

    def load(self, config: SparsityConfig) -> _faces.Faces:
        return _faces.load_faces(config.downsample)

    def compute(self, task: Task, data: _faces.Faces) -> dict[str, Any]:
        p = task.params
        return fit(data, p["kind"], float(p["value"]), p)

    def tables(self, results, config: SparsityConfig) -> dict[str, list[dict]]:
        rows = []
        for task in task_list(config):
            if task.key not in results:
                continue
            r = results[task.key]
            rows.append(
                {
                    "task": task.key,
                    "kind": task.params["kind"],
                    "value": task.params["value"],
                    "mean_sparseness_W": float(r["mean_sparseness_W"]),
                    "mean_sparseness_H": float(r["mean_sparseness_H"]),
                    "max_target_deviation": _maybe_float(r.get("max_target_deviation")),
                    "dead_components": int(r["dead_components"]),
                    f"near_zero_W_tau{config.zero_threshold:g}": float(r["near_zero_W"]),
                    "relative_error": float(r["relative_error"]),
                    "seconds": float(r["seconds"]),
                }
            )
        return {"sparsity_summary": rows}

    def figures(self, results, config: SparsityConfig) -> dict[str, Any]:
        tasks = [t for t in task_list(config) if t.key in results]
        if not tasks:
            return {}
        figs = {"tradeoff": _tradeoff_figure(results, tasks, config)}
        for kind, name in (("hoyer_W", "hoyer_bases"), ("l1_W", "l1_bases")):
            chosen = [t for t in tasks if t.params["kind"] in ("nmf", kind)]
            if len(chosen) > 1:
                figs[name] = _bases_figure(results, chosen, config, kind)
        return figs


def _maybe_float(value):
    return None if value is None else float(value)


def fit(faces: _faces.Faces, kind: str, value: float, params: Mapping[str, Any]) -> dict:
    """One fit of the study (``kind`` in nmf, l1_W, l1_H, hoyer_W, hoyer_H) and its measures."""
    V = faces.V
    options = dict(max_iter=int(params["max_iter"]), tol=0.0, key=int(params["seed"]))
    ridge = float(params["ridge"])
    if kind == "nmf":
        options["solver"] = "mu"
    elif kind == "l1_W":
        options.update(solver="mu", l1_W=value, l2_H=ridge)
    elif kind == "l1_H":
        options.update(solver="mu", l1_H=value, l2_W=ridge)
    elif kind == "hoyer_W":
        options["solver"] = jnmf.SparseHoyer(sparseness_W=value)
    elif kind == "hoyer_H":
        options["solver"] = jnmf.SparseHoyer(sparseness_H=value)
    else:
        raise ValueError(f"unknown fit kind {kind!r}; use nmf, l1_W, l1_H, hoyer_W or hoyer_H")
    start = time.perf_counter()
    solution = jnmf.nmf(V, int(params["rank"]), **options)
    W = np.asarray(solution.W, np.float64)
    H = np.asarray(solution.H, np.float64)
    seconds = time.perf_counter() - start
    norms_W, norms_H = np.linalg.norm(W, axis=0), np.linalg.norm(H, axis=1)
    alive = (norms_W > DEAD * norms_W.max()) & (norms_H > DEAD * norms_H.max())
    sparseness_W, sparseness_H = _faces.hoyer(W, axis=0), _faces.hoyer(H, axis=1)
    extra = {}
    if kind.startswith("hoyer"):
        reached = sparseness_W if kind == "hoyer_W" else sparseness_H
        gaps = np.abs(reached[alive] - value)
        extra["max_target_deviation"] = float(gaps.max()) if gaps.size else 1.0
    near_zero = _faces.near_zero_fraction(W[:, alive], float(params["zero_threshold"]))
    return {
        "kind": kind,
        "value": value,
        "W": W.astype(np.float32),
        "sparseness_W": sparseness_W,
        "sparseness_H": sparseness_H,
        "alive": alive,
        "mean_sparseness_W": float(sparseness_W[alive].mean()) if alive.any() else 0.0,
        "mean_sparseness_H": float(sparseness_H[alive].mean()) if alive.any() else 0.0,
        "dead_components": int((~alive).sum()),
        "near_zero_W": float(near_zero.mean()) if alive.any() else 1.0,
        "relative_error": _faces.relative_error(V, W @ H),
        "objective": float(solution.objective),
        "n_iter": int(solution.n_iter),
        "image_shape": np.asarray(faces.image_shape),
        "seconds": seconds,
        **extra,
    }


KIND_STYLE = {
    "nmf": ("k", "*", "plain NMF"),
    "l1_W": ("C0", "o", "L1 on W (λ‖W‖₁ + ½μ‖H‖²)"),
    "l1_H": ("C1", "s", "L1 on H (λ‖H‖₁ + ½μ‖W‖²)"),
    "hoyer_W": ("C2", "^", "Hoyer: s(W[:, k]) = target"),
    "hoyer_H": ("C3", "v", "Hoyer: s(H[k, :]) = target"),
}


def _tradeoff_figure(results, tasks, config):
    fig = _faces.new_figure(figsize=(14, 4.2), layout="constrained")
    ax_target, ax_w, ax_h = fig.subplots(1, 3)
    hoyer = [t for t in tasks if t.params["kind"].startswith("hoyer")]
    for kind in ("hoyer_W", "hoyer_H"):
        chosen = [t for t in hoyer if t.params["kind"] == kind]
        if not chosen:
            continue
        color, marker, label = KIND_STYLE[kind]
        key = "sparseness_W" if kind == "hoyer_W" else "sparseness_H"
        for t in chosen:
            r = results[t.key]
            reached = np.asarray(r[key])[np.asarray(r["alive"], bool)]
            ax_target.plot(
                [t.params["value"]] * reached.size,
                reached,
                marker,
                color=color,
                alpha=0.4,
                label=label if t is chosen[0] else None,
            )
    if hoyer:
        worst = max(float(results[t.key]["max_target_deviation"]) for t in hoyer)
        ax_target.axline((0, 0), slope=1, color="grey", lw=0.8, ls="--")
        ax_target.set_title(
            f"Hoyer: reached vs target (every component)\nmax |s − target| = "
            f"{worst:.1e} (tolerance {config.tolerance:g})",
            fontsize=9,
        )
        ax_target.set_xlabel("target sparseness")
        ax_target.set_ylabel("reached sparseness")
        ax_target.legend(fontsize=8)
    for ax, key, what in (
        (ax_w, "mean_sparseness_W", "W's columns (basis images)"),
        (ax_h, "mean_sparseness_H", "H's rows"),
    ):
        for kind, (color, marker, label) in KIND_STYLE.items():
            chosen = [t for t in tasks if t.params["kind"] == kind]
            if not chosen:
                continue
            x = [float(results[t.key][key]) for t in chosen]
            y = [float(results[t.key]["relative_error"]) for t in chosen]
            ax.plot(x, y, marker=marker, color=color, label=label, ls="-" if len(x) > 1 else "")
            for t, xi, yi in zip(chosen, x, y, strict=True):
                dead = int(results[t.key]["dead_components"])
                note = f"{t.params['value']:g}" + (f" ({dead} dead)" if dead else "")
                if kind != "nmf":
                    ax.annotate(
                        note,
                        (xi, yi),
                        xytext=(4, 3) if kind.startswith("l1") else (-4, -10),
                        textcoords="offset points",
                        ha="left" if kind.startswith("l1") else "right",
                        fontsize=7,
                        color=color,
                    )
        ax.set_xlabel(f"mean Hoyer sparseness of {what}")
        ax.set_ylabel("‖V − WH‖ / ‖V‖")
        ax.set_title(f"error vs sparseness of {what.split(' ')[0]}", fontsize=9)
    ax_w.legend(fontsize=7)
    fig.suptitle(
        f"ORL faces at {_faces_label(results, tasks)}, rank {config.rank}, "
        f"Frobenius loss, {config.max_iter} iterations, ridge μ = {config.ridge:g}",
        fontsize=10,
    )
    return fig


def _faces_label(results, tasks) -> str:
    height, width = (int(s) for s in results[tasks[0].key]["image_shape"])
    return f"{height}×{width} pixels"


def _bases_figure(results, tasks, config, kind):
    fig = _faces.new_figure(figsize=(3.3 * len(tasks), 4.4), layout="constrained")
    axes = fig.subplots(1, len(tasks), squeeze=False)[0]
    for ax, t in zip(axes, tasks, strict=True):
        r = results[t.key]
        shape = tuple(int(s) for s in r["image_shape"])
        head = (
            "plain NMF"
            if t.params["kind"] == "nmf"
            else (
                f"target s = {t.params['value']:g}"
                if kind == "hoyer_W"
                else f"λ = {t.params['value']:g}"
            )
        )
        title = (
            f"{head}\ns(W) = {float(r['mean_sparseness_W']):.2f}, "
            f"error {float(r['relative_error']):.3f}"
        )
        if int(r["dead_components"]):
            title += f"\n{int(r['dead_components'])} dead component(s)"
        _faces.draw_montage(ax, r["W"], shape, title)
    what = (
        "Hoyer's sparseness constraint on W"
        if kind == "hoyer_W"
        else (f"the L1 penalty λ‖W‖₁ (with ½·{config.ridge:g}‖H‖²)")
    )
    fig.suptitle(f"basis images W[:, k] as {what} grows", fontsize=10)
    return fig
