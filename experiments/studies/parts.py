"""Study ``parts``: Lee & Seung (1999) — NMF learns parts of faces, PCA and VQ learn wholes.

The 400 ORL faces (V, pixels × faces), each scaled to mean and standard deviation 0.25 and
clipped to [0, 1] as in the paper, are approximated at rank r (49) three ways:

* ``nmf``: V ≈ W H, W, H ≥ 0 (``jnmf.nmf``; by default β = 1, the paper's objective
  Σ V log(WH) − WH up to terms free of the factors, with multiplicative updates);
* ``pca``: V ≈ μ1ᵀ + B E with B the r leading principal axes (eigenfaces, signed, unit norm)
  and E the scores (scikit-learn's ``PCA``; the mean face μ is an extra, r+1-th, term);
* ``vq``: V ≈ C E with C the r k-means centroids and E one-hot (each face is replaced by
  its nearest centroid; scikit-learn's ``KMeans``).

Every basis is scaled to unit-norm columns (the scale moved into the encodings), then per
method: the Hoyer sparseness s(x) = (√n − ‖x‖₁/‖x‖₂)/(√n − 1) of every basis image and of
every encoding (a column of E), the fraction of near-zero pixels per basis image
(|B_ik| ≤ τ max_i |B_ik|, τ = ``zero_threshold``), and the relative reconstruction error
‖V − V̂‖_F/‖V‖_F.  The claim under test: NMF's basis images are the sparsest.
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

METHODS = ("nmf", "pca", "vq")
LABELS = {"nmf": "NMF", "pca": "PCA (eigenfaces)", "vq": "VQ (k-means)"}
N_FACES = 400


@dataclass(frozen=True)
class PartsConfig:
    rank: int = 49
    beta: float = 1.0
    solver: str = "mu"
    max_iter: int = 600
    tol: float = 0.0
    seed: int = 0
    n_restarts: int = 1
    vq_restarts: int = 4
    zero_threshold: float = 0.01
    downsample: int = 1
    example_face: int = 0


class PartsStudy(Study):
    """NMF vs PCA vs VQ basis images of faces and their sparseness (see the module docstring)."""

    name = "parts"
    description = "Lee & Seung 1999 on ORL faces: NMF vs PCA vs VQ bases, sparseness, error"

    def parse(self, section: Mapping[str, Any]) -> PartsConfig:
        read = _faces.Section(section, StudyConfigError, PartsConfig.__dataclass_fields__)
        defaults = PartsConfig()
        solver = read.choice("solver", defaults.solver, set(jnmf.SOLVERS) - {"sparse-hoyer"})
        return PartsConfig(
            rank=read.integer("rank", defaults.rank, 1, N_FACES),
            beta=read.real("beta", defaults.beta, -10.0, 10.0),
            solver=solver,
            max_iter=read.integer("max_iter", defaults.max_iter, 1),
            tol=read.real("tol", defaults.tol, 0.0),
            seed=read.integer("seed", defaults.seed, 0),
            n_restarts=read.integer("n_restarts", defaults.n_restarts, 1),
            vq_restarts=read.integer("vq_restarts", defaults.vq_restarts, 1),
            zero_threshold=read.real("zero_threshold", defaults.zero_threshold, 0.0, 1.0, True),
            downsample=read.integer("downsample", defaults.downsample, 1, 46),
            example_face=read.integer("example_face", defaults.example_face, 0, N_FACES - 1),
        )

    def tasks(self, config: PartsConfig) -> list[Task]:
        return [Task(method, {"method": method, **asdict(config)}) for method in METHODS]

    def load(self, config: PartsConfig) -> _faces.Faces:
        return _faces.load_faces(config.downsample)

    def compute(self, task: Task, data: _faces.Faces) -> dict[str, Any]:
        fields = {k: v for k, v in task.params.items() if k in PartsConfig.__dataclass_fields__}
        return self.compute_method(task.params["method"], data, PartsConfig(**fields))

    def compute_method(self, method: str, faces: _faces.Faces, config: PartsConfig) -> dict:
        """Fit one method; return its unit-norm basis, encodings and the measures."""
        V = faces.V
        start = time.perf_counter()
        extra: dict[str, Any] = {}
        if method == "nmf":
            solution = jnmf.nmf(
                V,
                config.rank,
                beta=config.beta,
                solver=config.solver,
                max_iter=config.max_iter,
                tol=config.tol,
                n_restarts=config.n_restarts,
                key=config.seed,
            )
            basis, encodings = np.asarray(solution.W), np.asarray(solution.H)
            approximation = basis.astype(np.float64) @ encodings
            extra = {"objective": float(solution.objective), "n_iter": int(solution.n_iter)}
        elif method == "pca":
            from sklearn.decomposition import PCA

            pca = PCA(n_components=config.rank, random_state=config.seed).fit(V.T)
            basis, encodings = pca.components_.T, pca.transform(V.T).T
            approximation = pca.mean_[:, None] + basis @ encodings
        elif method == "vq":
            from sklearn.cluster import KMeans
            from threadpoolctl import threadpool_limits

            with threadpool_limits(1):  # k-means' BLAS threads thrash on a loaded 2-core CPU
                kmeans = KMeans(config.rank, n_init=config.vq_restarts, random_state=config.seed)
                labels = kmeans.fit_predict(V.T)
            basis = kmeans.cluster_centers_.T
            encodings = np.zeros((config.rank, V.shape[1]))
            encodings[labels, np.arange(V.shape[1])] = 1.0
            approximation = basis[:, labels]
        else:
            raise ValueError(f"unknown method {method!r}; use one of {METHODS}")
        seconds = time.perf_counter() - start
        basis, encodings = _faces.unit_columns(basis, encodings)
        basis_sparseness = _faces.hoyer(basis, axis=0)
        encoding_sparseness = _faces.hoyer(encodings, axis=0)
        near_zero = _faces.near_zero_fraction(basis, config.zero_threshold)
        return {
            "method": method,
            "basis": basis.astype(np.float32),
            "encodings": encodings.astype(np.float32),
            "basis_sparseness": basis_sparseness,
            "encoding_sparseness": encoding_sparseness,
            "near_zero_fraction": near_zero,
            "mean_basis_sparseness": float(basis_sparseness.mean()),
            "mean_encoding_sparseness": float(encoding_sparseness.mean()),
            "mean_near_zero_fraction": float(near_zero.mean()),
            "relative_error": _faces.relative_error(V, approximation),
            "example_reconstruction": np.asarray(approximation[:, config.example_face], np.float32),
            "example_face": np.asarray(V[:, config.example_face], np.float32),
            "image_shape": np.asarray(faces.image_shape),
            "seconds": seconds,
            **extra,
        }

    def tables(self, results, config: PartsConfig) -> dict[str, list[dict]]:
        rows = []
        for method in METHODS:
            if method not in results:
                continue
            r = results[method]
            rows.append(
                {
                    "method": method,
                    "rank": config.rank,
                    "mean_basis_sparseness": float(r["mean_basis_sparseness"]),
                    "mean_encoding_sparseness": float(r["mean_encoding_sparseness"]),
                    f"mean_near_zero_fraction_tau{config.zero_threshold:g}": float(
                        r["mean_near_zero_fraction"]
                    ),
                    "relative_error": float(r["relative_error"]),
                    "seconds": float(r["seconds"]),
                }
            )
        return {"parts_summary": rows}

    def figures(self, results, config: PartsConfig) -> dict[str, Any]:
        done = [m for m in METHODS if m in results]
        if not done:
            return {}
        return {
            "bases": _bases_figure(results, done, config),
            "measures": _measures_figure(results, done, config),
            "encoding": _encoding_figure(results, done, config),
        }


def _margin_text(results) -> str:
    """How much sparser NMF's basis is than the sparser of PCA's and VQ's (if all ran)."""
    if not all(m in results for m in METHODS):
        return ""
    nmf = float(results["nmf"]["mean_basis_sparseness"])
    rival = max(METHODS[1:], key=lambda m: float(results[m]["mean_basis_sparseness"]))
    other = float(results[rival]["mean_basis_sparseness"])
    verdict = "sparsest" if nmf > other else "NOT the sparsest"
    return (
        f"NMF basis {verdict}: mean Hoyer sparseness {nmf:.3f} vs {LABELS[rival]} {other:.3f} "
        f"({nmf - other:+.3f}, ×{nmf / other:.2f})"
    )


def _bases_figure(results, done, config):
    fig = _faces.new_figure(figsize=(5.2 * len(done), 6.4), layout="constrained")
    axes = fig.subplots(1, len(done), squeeze=False)[0]
    for ax, method in zip(axes, done, strict=True):
        r = results[method]
        title = (
            f"{LABELS[method]}\nbasis sparseness {float(r['mean_basis_sparseness']):.3f}, "
            f"near-zero pixels {100 * float(r['mean_near_zero_fraction']):.0f}%"
        )
        shape = tuple(int(s) for s in r["image_shape"])
        _faces.draw_montage(ax, r["basis"], shape, title, signed=(method == "pca"))
    fig.suptitle(
        f"ORL faces, rank {config.rank}: basis images, each scaled to its peak (NMF, VQ: "
        f"dark = large; PCA signed: red > 0 > blue)\n{_margin_text(results)}",
        fontsize=10,
    )
    return fig


def _measures_figure(results, done, config):
    fig = _faces.new_figure(figsize=(13, 3.6), layout="constrained")
    axes = fig.subplots(1, 4)
    panels = [
        ("basis_sparseness", "Hoyer sparseness of basis images"),
        ("encoding_sparseness", "Hoyer sparseness of encodings"),
        (
            "near_zero_fraction",
            f"near-zero pixels per basis image\n(|w| ≤ {config.zero_threshold:g}·peak)",
        ),
    ]
    names = [LABELS[m].split(" ")[0] for m in done]
    for ax, (key, title) in zip(axes, panels, strict=False):
        ax.boxplot([np.asarray(results[m][key]) for m in done], tick_labels=names)
        for i, m in enumerate(done, start=1):
            mean = float(np.mean(results[m][key]))
            ax.plot(i, mean, "D", color="C3")
            ax.annotate(f"{mean:.2f}", (i, mean), xytext=(6, 0), textcoords="offset points")
        ax.set_title(title, fontsize=9)
        ax.set_ylim(-0.02, 1.02)
    errors = [float(results[m]["relative_error"]) for m in done]
    axes[3].bar(names, errors, color=["C0", "C1", "C2"][: len(done)])
    for i, e in enumerate(errors):
        axes[3].annotate(f"{e:.3f}", (i, e), ha="center", va="bottom")
    axes[3].set_title("relative error ‖V − V̂‖/‖V‖\n(PCA: r axes + the mean face)", fontsize=9)
    fig.suptitle(f"per-method measures, rank {config.rank} (◆ = mean)", fontsize=10)
    return fig


def _encoding_figure(results, done, config):
    """Lee & Seung's Figure 1 layout: one face, its encoding (an r-grid) and reconstruction."""
    fig = _faces.new_figure(figsize=(2.2 * (1 + 2 * len(done)), 3.2), layout="constrained")
    axes = fig.subplots(1, 1 + 2 * len(done))
    first = results[done[0]]
    shape = tuple(int(s) for s in first["image_shape"])
    face = config.example_face
    axes[0].imshow(np.asarray(first["example_face"]).reshape(shape), cmap="gray", vmin=0, vmax=1)
    axes[0].set_title(f"face {face}", fontsize=9)
    side = int(np.ceil(np.sqrt(config.rank)))
    for i, method in enumerate(done):
        r = results[method]
        code = np.full(side * side, np.nan)
        code[: config.rank] = np.asarray(r["encodings"])[:, face]
        limit = np.nanmax(np.abs(code))
        ax_code, ax_face = axes[1 + 2 * i], axes[2 + 2 * i]
        cmap, vmin = ("RdBu_r", -limit) if method == "pca" else ("gray_r", 0)
        ax_code.imshow(code.reshape(side, side), cmap=cmap, vmin=vmin, vmax=limit)
        s = float(np.asarray(r["encoding_sparseness"])[face])
        ax_code.set_title(
            f"{LABELS[method].split(' ')[0]} encoding\nsparseness {s:.2f}", fontsize=9
        )
        recon = np.asarray(r["example_reconstruction"]).reshape(shape)
        ax_face.imshow(recon, cmap="gray", vmin=0, vmax=1)
        ax_face.set_title("reconstruction", fontsize=9)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    return fig
