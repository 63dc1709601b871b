"""The ``unmixing`` study: hyperspectral unmixing of Indian Pines by NMF.

V (200 bands × 21 025 pixels, one pixel per column, scaled by its largest entry) ≈ W H: the
columns of W are endmember spectra, the columns of H the pixels' abundances.  The number of
endmembers r is chosen by held-out imputation cross-validation (``jnmf.select.imputation_cv``)
on a random subset of pixels: the candidate rank with the smallest mean held-out error is
taken when that minimum lies strictly inside the candidate range; at an edge of the range the
curve has no minimum to read, and the study falls back to 16, the number of ground-truth
classes (the reason is stored with the result).

NMF fixes W H only up to a positive scaling of each component, so abundances are read as
fractions of each pixel's fitted radiance,

    s_k = Σ_i W_ik,   a_kj = s_k H_kj / Σ_l s_l H_lj   (Σ_k a_kj = 1),

and endmembers as the unit-sum spectra W_k / s_k drawn at the mean pixel's fitted radiance.
Each pixel's label is argmax_k a_kj; its agreement with the 16-class ground truth is the
adjusted Rand index (ARI) over the labelled pixels only (label 0 = unlabelled is excluded).
On Indian Pines one broad, bright endmember holds the largest fraction of most pixels, so a
second, relative label is stored too: argmax_k a_kj / max_j' a_kj' (each endmember's
fraction relative to its purest pixel; invariant to the components' scales as a_kj is).
Two references are stored beside them: the mean ARI of the labels randomly permuted over the
labelled pixels (chance, ≈ 0) and k-means on the pixel spectra with the same r.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import jax
import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

import jnmf
from experiments.study import Study, StudyConfigError, Task

CLASS_COUNT = 16
_INTEGERS = {"cv_pixels": 10, "cv_folds": 1, "cv_max_iter": 1, "max_iter": 1, "restarts": 1}
_INTEGERS["seed"] = 0
_INTERVALS = {"cv_fraction": (1e-3, 0.9), "tol": (0.0, 1.0)}
_INITS = ("random", "nndsvd", "nndsvda", "nndsvdar")
_SUMMARY = {  # table column: result key
    "ari_nmf_argmax": "ari",
    "ari_nmf_relative_argmax": "ari_relative",
    "ari_chance_permuted": "ari_chance",
    "ari_kmeans_same_rank": "ari_kmeans",
    "relative_error": "relative_error",
    "n_iter": "n_iter",
    "fit_seconds": "fit_seconds",
}


@dataclass(frozen=True)
class UnmixingConfig:
    """The ``[study]`` table of ``configs/unmixing.toml`` (see ``UnmixingStudy.parse``)."""

    candidate_ranks: tuple[int, ...] = (4, 8, 12, 16, 20, 24)
    compare_ranks: tuple[int, ...] = (CLASS_COUNT,)
    cv_pixels: int = 2000
    cv_folds: int = 3
    cv_fraction: float = 0.1
    cv_max_iter: int = 200
    solver: str = "hals"
    init: str = "nndsvda"
    max_iter: int = 300
    tol: float = 1e-6
    restarts: int = 1
    seed: int = 0
    window: tuple[int, int, int, int] | None = None


@dataclass(frozen=True)
class Scene:
    """A hyperspectral scene: V (bands × pixels, row-major pixels) and its ground truth."""

    V: np.ndarray
    truth: np.ndarray
    shape: tuple[int, int]


def _is_int(value, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _bad(key, what, value):
    return StudyConfigError(f"[study] {key} must be {what}, got {value!r}")


def choose_rank(ranks, heldout, fallback: int = CLASS_COUNT) -> tuple[int, str]:
    """(rank, reason): the CV minimum if it is inside ``ranks``, else ``fallback``.

    ``heldout`` is (folds, len(ranks)); the mean over folds is minimized.
    """
    ranks = [int(r) for r in ranks]
    mean = np.asarray(heldout, float).mean(axis=0)
    if not np.all(np.isfinite(mean)):
        return fallback, f"held-out error not finite at some rank; fell back to {fallback}"
    best = int(np.argmin(mean))
    if len(ranks) >= 3 and 0 < best < len(ranks) - 1:
        return ranks[best], (
            f"imputation CV: mean held-out error is smallest at r = {ranks[best]} "
            f"(inside the candidates {ranks[0]}..{ranks[-1]})"
        )
    return fallback, (
        f"imputation CV minimum at r = {ranks[best]}, an edge of the candidates "
        f"{ranks[0]}..{ranks[-1]} (no interior minimum); fell back to {fallback}, "
        "the number of ground-truth classes"
    )


def abundance_fractions(W, H) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(a, e, t): fractions a (r×m, columns sum to 1), unit-sum spectra e (n×r), totals t (m).

    s_k = Σ_i W_ik, e_k = W_k / s_k, t_j = Σ_k s_k H_kj and a_kj = s_k H_kj / t_j, so that
    (W H)_j = t_j Σ_k a_kj e_k.  Pixels with t_j = 0 get a_kj = 1/r.
    """
    W, H = np.asarray(W, np.float64), np.asarray(H, np.float64)
    scale = W.sum(axis=0)
    spectra = W / np.where(scale > 0, scale, 1.0)
    contribution = scale[:, None] * H
    totals = contribution.sum(axis=0)
    safe = np.where(totals > 0, totals, 1.0)
    fractions = np.where(totals > 0, contribution / safe, 1.0 / W.shape[1])
    return fractions, spectra, totals


def labelled_ari(truth, labels) -> float:
    """Adjusted Rand index of ``labels`` against ``truth`` over pixels with truth > 0."""
    truth, labels = np.ravel(truth), np.ravel(labels)
    keep = truth > 0
    if not keep.any():
        raise ValueError("the ground truth has no labelled pixel (all 0): nothing to compare")
    return float(adjusted_rand_score(truth[keep], labels[keep]))


def chance_ari(truth, labels, n_shuffles: int = 20, seed: int = 0) -> float:
    """Mean ARI of ``labels`` randomly permuted over the labelled pixels (the chance level)."""
    truth, labels = np.ravel(truth), np.ravel(labels)
    keep = truth > 0
    rng = np.random.default_rng(seed)
    kept_truth, kept_labels = truth[keep], labels[keep]
    scores = [
        adjusted_rand_score(kept_truth, rng.permutation(kept_labels)) for _ in range(n_shuffles)
    ]
    return float(np.mean(scores))


def _dtype():
    return jax.dtypes.canonicalize_dtype(np.float64)


class UnmixingStudy(Study):
    """Indian Pines unmixing: rank by imputation CV, abundance maps, endmembers, ARI."""

    name = "unmixing"
    description = "Indian Pines NMF unmixing: CV-chosen endmember count, abundances, ARI"

    def parse(self, section: Mapping[str, Any]) -> UnmixingConfig:
        """Validate ``[study]``; every key is optional (defaults in ``UnmixingConfig``).

        ``window = [row0, row1, col0, col1]`` crops the scene (rows row0..row1-1), for
        reduced runs; ``compare_ranks`` are fitted too, beside the chosen rank.
        """
        keys = {f.name for f in fields(UnmixingConfig)}
        if set(section) - keys:
            raise StudyConfigError(
                f"[study] unknown keys {sorted(set(section) - keys)}; use some of {sorted(keys)}"
            )
        values = {**asdict(UnmixingConfig()), **section}
        for key in ("candidate_ranks", "compare_ranks"):
            ranks = values[key]
            if not isinstance(ranks, list | tuple) or not all(_is_int(r, 1) for r in ranks):
                raise _bad(key, "a list of integers ≥ 1", ranks)
            if len(set(ranks)) != len(ranks):
                raise _bad(key, "a list without repeats", ranks)
            values[key] = tuple(sorted(ranks))
        if len(values["candidate_ranks"]) < 3:
            raise _bad(
                "candidate_ranks",
                "≥ 3 ranks (so an interior minimum can exist)",
                values["candidate_ranks"],
            )
        for key, low in _INTEGERS.items():
            if not _is_int(values[key], low):
                raise _bad(key, f"an integer ≥ {low}", values[key])
        for key, (low, high) in _INTERVALS.items():
            v = values[key]
            if isinstance(v, bool) or not isinstance(v, int | float) or not low <= v < high:
                raise _bad(key, f"a number in [{low}, {high})", v)
        for key, choices in (("solver", tuple(jnmf.SOLVERS)), ("init", _INITS)):
            if values[key] not in choices:
                raise _bad(key, f"one of {sorted(choices)}", values[key])
        window = values["window"]
        if window is not None:
            ok = isinstance(window, list | tuple) and len(window) == 4
            ok = ok and all(_is_int(v, 0) for v in window)
            if not ok or not (window[0] < window[1] and window[2] < window[3]):
                raise _bad(
                    "window", "[row0, row1, col0, col1] with row0 < row1, col0 < col1", window
                )
            values["window"] = tuple(window)
        return UnmixingConfig(**values)

    def tasks(self, config: UnmixingConfig) -> list[Task]:
        """``selected`` (CV then the fit at the chosen rank) and one fit per compare rank."""
        settings = asdict(config)
        fixed = [Task(f"rank-{r}", {**settings, "rank": r}) for r in config.compare_ranks]
        return [Task("selected", {**settings, "rank": None}), *fixed]

    def load(self, config: UnmixingConfig) -> Scene:
        """Indian Pines from tensorly (``jnmf.data.load_indian_pines``), cropped, V / max V."""
        dataset = jnmf.data.load_indian_pines()
        rows, cols, bands = dataset.meta["cube_shape"]
        cube = dataset.V.T.reshape(rows, cols, bands)
        truth = np.asarray(dataset.meta["ground_truth"])
        if config.window is not None:
            r0, r1, c0, c1 = config.window
            if r1 > rows or c1 > cols:
                raise StudyConfigError(
                    f"[study] window {config.window} exceeds the {rows}×{cols} scene"
                )
            cube, truth = cube[r0:r1, c0:c1], truth[r0:r1, c0:c1]
        V = cube.reshape(-1, bands).T
        return Scene(V=V / V.max(), truth=truth, shape=truth.shape)

    def compute(self, task: Task, data: Scene) -> dict[str, Any]:
        """Fit at the task's rank (choosing it first for ``selected``); abundances and ARI."""
        settings = dict(task.params)
        rank = settings.pop("rank")
        cfg = UnmixingConfig(**settings)
        V = np.asarray(data.V, _dtype())
        result: dict[str, Any] = {}
        if rank is None:
            result.update(self._select(V, cfg))
            rank = int(result["chosen_rank"])
        start = time.perf_counter()
        options = dict(solver=cfg.solver, n_restarts=cfg.restarts, tol=cfg.tol, key=cfg.seed)
        sol = jnmf.nmf(V, rank, init=cfg.init, max_iter=cfg.max_iter, **options)
        W, H = np.asarray(sol.W, np.float64), np.asarray(sol.H, np.float64)
        fit_seconds = time.perf_counter() - start
        fractions, spectra, totals = abundance_fractions(W, H)
        labels = fractions.argmax(axis=0)
        relative = (fractions / np.maximum(fractions.max(axis=1, keepdims=True), 1e-300)).argmax(0)
        kmeans = KMeans(n_clusters=rank, n_init=3, random_state=cfg.seed).fit(V.T)
        Vd = np.asarray(V, np.float64)
        result.update(
            rank=rank,
            objective=float(sol.objective),
            n_iter=int(sol.n_iter),
            fit_seconds=fit_seconds,
            relative_error=float(np.linalg.norm(Vd - W @ H) / np.linalg.norm(Vd)),
            abundances=fractions.astype(np.float32),
            endmembers=spectra * totals.mean(),
            labels=labels,
            truth=np.asarray(data.truth).reshape(-1),
            image_shape=np.asarray(data.shape),
            ari=labelled_ari(data.truth, labels),
            relative_labels=relative,
            ari_relative=labelled_ari(data.truth, relative),
            ari_chance=chance_ari(data.truth, labels, seed=cfg.seed),
            ari_kmeans=labelled_ari(data.truth, kmeans.labels_),
            labelled_pixels=int((np.asarray(data.truth) > 0).sum()),
        )
        return result

    def _select(self, V, cfg: UnmixingConfig) -> dict[str, Any]:
        """Imputation CV on ``cv_pixels`` random pixels; the rank rule of ``choose_rank``."""
        m = V.shape[1]
        rng = np.random.default_rng(cfg.seed)
        pixels = np.sort(rng.choice(m, size=min(cfg.cv_pixels, m), replace=False))
        start = time.perf_counter()
        folds = dict(n_folds=cfg.cv_folds, fraction=cfg.cv_fraction, max_iter=cfg.cv_max_iter)
        cv = jnmf.select.imputation_cv(
            V[:, pixels], cfg.candidate_ranks, solver=cfg.solver, tol=1e-5, key=cfg.seed, **folds
        )
        chosen, reason = choose_rank(cv.ranks, cv.heldout, CLASS_COUNT)
        return {
            "cv_ranks": np.asarray(cv.ranks),
            "cv_heldout": np.asarray(cv.heldout, np.float64),
            "cv_train": np.asarray(cv.train, np.float64),
            "cv_best_rank": int(cv.best_rank),
            "cv_pixels": int(pixels.size),
            "cv_seconds": time.perf_counter() - start,
            "chosen_rank": int(chosen),
            "choice": reason,
        }

    def figures(self, results: Mapping[str, Mapping[str, Any]], config: Any) -> dict[str, Any]:
        """CV curve, abundance maps and endmember spectra per fit, label maps with their ARI."""
        results = _finished(results)
        if "selected" in results:  # a compare fit at the chosen rank repeats the selected one
            chosen = int(results["selected"]["rank"])
            results = {k: r for k, r in results.items() if k == "selected" or r["rank"] != chosen}
        figures: dict[str, Any] = {}
        selected = results.get("selected")
        if selected is not None:
            figures["rank_selection"] = _cv_figure(selected)
        for key, result in results.items():
            suffix = "" if key == "selected" else f"_r{int(result['rank'])}"
            figures[f"abundances{suffix}"] = _abundance_figure(result)
            figures[f"endmembers{suffix}"] = _endmember_figure(result)
        if results:
            figures["labels"] = _label_figure(results)
        return figures

    def tables(self, results: Mapping[str, Mapping[str, Any]], config: Any) -> dict[str, list]:
        """``summary`` (one row per fit) and ``cv`` (one row per rank)."""
        summary = []
        for key, r in _finished(results).items():
            row = {"fit": key, "rank": int(r["rank"]), "how_chosen": str(r.get("choice", "fixed"))}
            row |= {column: round(float(r[name]), 4) for column, name in _SUMMARY.items()}
            summary.append(row | {"labelled_pixels": int(r["labelled_pixels"])})
        cv_rows = []
        if "selected" in results and "skipped" not in results["selected"]:
            r = results["selected"]
            heldout, train = np.asarray(r["cv_heldout"]), np.asarray(r["cv_train"])
            for k, rank in enumerate(np.asarray(r["cv_ranks"]).tolist()):
                row = {"rank": rank, "heldout_mean": float(heldout[:, k].mean())}
                row |= {"heldout_std": float(heldout[:, k].std())}
                row |= {"train_mean": float(train[:, k].mean())}
                cv_rows.append(row | {"chosen": rank == int(r["chosen_rank"])})
        return {"summary": summary, "cv": cv_rows}


def _finished(results):
    return {key: result for key, result in results.items() if "skipped" not in result}


def _new_figure(**kwargs):
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def _cv_figure(result) -> Any:
    ranks = np.asarray(result["cv_ranks"])
    heldout, train = np.asarray(result["cv_heldout"]), np.asarray(result["cv_train"])
    fig = _new_figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.add_subplot()
    for fold in heldout:
        ax.plot(ranks, fold, color="tab:blue", alpha=0.3, lw=1)
    ax.plot(ranks, heldout.mean(axis=0), "o-", color="tab:blue", lw=2, label="held-out (mean)")
    ax.plot(ranks, train.mean(axis=0), "s--", color="tab:gray", label="training (mean)")
    ax.axvline(int(result["chosen_rank"]), color="tab:red", ls=":", label="chosen r")
    ax.set(
        xlabel="rank r",
        ylabel="mean ½(V − WH)² per entry",
        yscale="log",
        title=f"Indian Pines: imputation CV on {int(result['cv_pixels'])} pixels, "
        f"{heldout.shape[0]} folds\n{result['choice']}",
    )
    ax.title.set_fontsize(8)
    ax.legend()
    return fig


def _abundance_figure(result) -> Any:
    shape = tuple(int(s) for s in np.asarray(result["image_shape"]))
    fractions = np.asarray(result["abundances"])
    rank = fractions.shape[0]
    cols = min(rank, 6)
    rows = -(-rank // cols)
    fig = _new_figure(figsize=(1.9 * cols, 2.0 * rows + 0.5), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    labels = np.asarray(result["labels"])
    for k, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if k < rank:
            top = float(fractions[k].max())
            ax.imshow(fractions[k].reshape(shape), vmin=0, vmax=top, cmap="viridis")
            ax.set_title(f"{k}: max {top:.2f}, argmax on {np.mean(labels == k):.0%}", fontsize=8)
    fig.suptitle(
        f"Indian Pines abundance fractions a_kj, r = {rank}, each map from 0 (dark) to its max "
        "(yellow); 'argmax on' = share of pixels whose largest fraction is k",
        fontsize=10,
    )
    return fig


def _endmember_figure(result) -> Any:
    spectra = np.asarray(result["endmembers"])
    fig = _new_figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.add_subplot()
    colors = [f"C{k % 10}" for k in range(spectra.shape[1])]
    styles = ["-", "--", ":"]
    for k in range(spectra.shape[1]):
        ax.plot(spectra[:, k], color=colors[k], ls=styles[(k // 10) % 3], lw=1.2, label=str(k))
    ax.set(
        xlabel="band index (200 AVIRIS bands, 0.4–2.5 µm, water bands removed)",
        ylabel="radiance / max(V)",
        title=f"endmember spectra W_k / Σ_i W_ik (mean pixel's radiance), r = {spectra.shape[1]}",
    )
    ax.legend(ncol=2, fontsize=7, title="k")
    return fig


def _label_figure(results) -> Any:
    first = next(iter(results.values()))
    shape = tuple(int(s) for s in np.asarray(first["image_shape"]))
    truth = np.asarray(first["truth"]).reshape(shape)
    panels = [("ground truth (0 = unlabelled, grey)", np.ma.masked_equal(truth, 0))]
    for key, r in results.items():
        rank, chance = int(r["rank"]), float(r["ari_chance"])
        for field, name, ari in (
            ("labels", "argmax_k a_kj", r["ari"]),
            ("relative_labels", "argmax_k a_kj / max_j a_kj", r["ari_relative"]),
        ):
            title = f"{name}, r = {rank} ({key})\nARI {float(ari):.3f} (chance {chance:.3f})"
            panels.append((title, np.asarray(r[field]).reshape(shape)))
        kmeans = f"k-means ARI {float(r['ari_kmeans']):.3f} at r = {rank}"
        panels[-1] = (panels[-1][0] + f"; {kmeans}", panels[-1][1])
    fig = _new_figure(figsize=(3.6 * len(panels), 4.4), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (title, image) in zip(axes, panels, strict=True):
        ax.set_facecolor("0.8")
        ax.imshow(image, cmap="tab20", interpolation="nearest")
        ax.set_title(title, fontsize=7)
        ax.set_axis_off()
    n_labelled = int(first["labelled_pixels"])
    fig.suptitle(
        f"NMF labels vs the 16-class ground truth; ARI over the {n_labelled} labelled pixels"
    )
    return fig
