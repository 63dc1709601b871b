"""Task-driven dictionary learning (Mairal, Bach & Ponce 2012) on scikit-learn's digits.

Three linear (softmax) classifiers of the 8×8 digit images, pixels scaled to [0, 1]:

* ``end_to_end``: an ``NMFLayer`` with r atoms (codes h*(v) = argmin_{h ≥ 0}
  ½‖v − Wh‖² + l1‖h‖₁) followed by the classifier, dictionary and classifier trained together
  with Adam on the cross-entropy, gradients through the layer's implicit (KKT) mode;
* ``unsupervised_nmf``: the same classifier on the codes of a dictionary learned without
  labels (``jnmf.nmf`` on the training images, rank r, atoms scaled to unit norm, test
  images encoded with that W fixed);
* ``raw_pixels``: the same classifier on the 64 pixels.

As in Mairal et al., the end-to-end model starts from the unsupervised dictionary (and
from the classifier trained on its codes), so the supervised phase only has to improve it.
The split is a seeded permutation (``test_size`` of the 1797 images held out).

The study ``task-driven-digits`` (``jnmf-run configs/task_driven_digits.toml``): one task per
seed; figures: test accuracy of the three models (seeds as dots) and the end-to-end training
loss; table ``accuracy``: one row per seed and model.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

import jnmf
from experiments.study import Study, StudyConfigError, Task
from jnmf.nn import Implicit, NMFLayer, encode

DEFAULTS = {
    "seed": 0,
    "test_size": 0.3,
    "rank": 32,
    "l1": 0.1,
    "max_iter": 100,  # encoding steps (projected gradient, β = 2)
    "nmf_max_iter": 500,  # unsupervised jnmf.nmf iterations
    "steps": 400,  # end-to-end Adam steps
    "batch_size": 256,
    "learning_rate": 0.01,  # end-to-end
    "classifier_steps": 1500,  # Adam steps for classifiers on fixed features
    "classifier_learning_rate": 0.05,
    "weight_decay": 1e-3,  # on the classifier weights, in every model
}


MODELS = ("end_to_end", "unsupervised_nmf", "raw_pixels")
POSITIVE_FLOATS = ("l1", "learning_rate", "classifier_learning_rate")


def _check(config: Mapping) -> dict:
    """Defaults filled in and every value checked (``StudyConfigError`` naming the key)."""
    unknown = sorted(set(config) - set(DEFAULTS) - {"seeds"})
    if unknown:
        raise StudyConfigError(f"unknown keys {unknown}; allowed: {sorted(DEFAULTS)} and seeds")
    cfg = {**DEFAULTS, **config}
    for key in ("test_size", "weight_decay", *POSITIVE_FLOATS):
        value = cfg[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise StudyConfigError(f"study.{key} must be a number, got {value!r}")
        if not np.isfinite(value) or value < 0:
            raise StudyConfigError(f"study.{key} must be a finite number ≥ 0, got {value!r}")
    if not 0 < cfg["test_size"] < 1:
        raise StudyConfigError(f"study.test_size must be in (0, 1), got {cfg['test_size']}")
    for key in ("rank", "max_iter", "nmf_max_iter", "steps", "batch_size", "classifier_steps"):
        if not isinstance(cfg[key], int) or isinstance(cfg[key], bool) or cfg[key] < 1:
            raise StudyConfigError(f"study.{key} must be an integer ≥ 1, got {cfg[key]!r}")
    if cfg["rank"] > 64:
        raise StudyConfigError(
            f"study.rank must be ≤ 64 (the digits have 64 pixels), got {cfg['rank']}"
        )
    seeds = cfg.get("seeds", [cfg["seed"]])
    if (
        not isinstance(seeds, list)
        or not seeds
        or any(not isinstance(s, int) or isinstance(s, bool) or s < 0 for s in seeds)
        or len(set(seeds)) != len(seeds)
    ):
        raise StudyConfigError(f"study.seeds must be distinct integers ≥ 0, got {seeds!r}")
    cfg["seeds"] = seeds
    return cfg


def load_split(seed: int, test_size: float):
    """Digits as (X_train, y_train, X_test, y_test), rows are images, pixels in [0, 1]."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:  # pragma: no cover
        raise ImportError("this experiment needs scikit-learn: pip install scikit-learn") from err
    digits = load_digits()
    X = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int32)
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = int(round(test_size * len(y)))
    test, train = order[:n_test], order[n_test:]
    return X[train], y[train], X[test], y[test]


class Linear(eqx.Module):
    """Softmax regression: logits = A x + b."""

    A: jax.Array
    b: jax.Array

    def __init__(self, n_in: int, n_classes: int):
        self.A = jnp.zeros((n_classes, n_in), jnp.float32)
        self.b = jnp.zeros((n_classes,), jnp.float32)

    def __call__(self, x):
        return x @ self.A.T + self.b


def _cross_entropy(logits, y):
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y))


def _accuracy(logits, y) -> float:
    return float(jnp.mean(jnp.argmax(logits, axis=-1) == y))


def train_classifier(F, y, steps: int, lr: float, weight_decay: float) -> Linear:
    """Full-batch Adam on the cross-entropy of a linear classifier on fixed features F."""
    model = Linear(F.shape[1], 10)
    opt = optax.adam(lr)

    def loss(model):
        return _cross_entropy(model(F), y) + 0.5 * weight_decay * jnp.sum(model.A**2)

    @jax.jit
    def fit(model):
        def step(carry, _):
            model, state = carry
            grads = jax.grad(loss)(model)
            updates, state = opt.update(grads, state)
            return (optax.apply_updates(model, updates), state), None

        return jax.lax.scan(step, (model, opt.init(model)), None, length=steps)[0][0]

    return fit(model)


def run(config: Mapping) -> dict:
    """Train and evaluate the three models; returns accuracies, settings and timings."""
    cfg = _check(config)
    t_start = time.perf_counter()
    X_tr, y_tr, X_te, y_te = load_split(cfg["seed"], cfg["test_size"])
    r, l1, wd = cfg["rank"], cfg["l1"], cfg["weight_decay"]
    code_kw = dict(beta=2.0, l1=l1, solver="pg", max_iter=cfg["max_iter"], tol=0.0)
    timings = {}

    # (b) raw pixels
    t = time.perf_counter()
    clf_raw = train_classifier(
        X_tr, y_tr, cfg["classifier_steps"], cfg["classifier_learning_rate"], wd
    )
    timings["raw_pixels_s"] = time.perf_counter() - t

    # (a) unsupervised NMF dictionary, atoms scaled to unit ℓ2 norm (as the layer's are)
    t = time.perf_counter()
    sol = jnmf.nmf(
        X_tr.T, r, init="nndsvda", max_iter=cfg["nmf_max_iter"], tol=1e-6, key=cfg["seed"]
    )
    W0 = np.asarray(sol.W)
    W0 = W0 / np.linalg.norm(W0, axis=0, keepdims=True)
    codes = jax.jit(lambda X, W: encode(X.T, W, **code_kw).T)
    C_tr, C_te = codes(X_tr, W0), codes(X_te, W0)
    clf_nmf = train_classifier(
        C_tr, y_tr, cfg["classifier_steps"], cfg["classifier_learning_rate"], wd
    )
    timings["unsupervised_nmf_s"] = time.perf_counter() - t

    # end to end: NMFLayer (from W0) + classifier (from clf_nmf), Adam on minibatches
    t = time.perf_counter()
    layer = NMFLayer(
        X_tr.shape[1],
        r,
        W=W0,
        l1=l1,
        solver="pg",
        max_iter=cfg["max_iter"],
        tol=0.0,
        gradient=Implicit(cg_tol=1e-4, cg_maxiter=100),
        dtype=jnp.float32,
    )
    model = (layer, clf_nmf)
    opt = optax.adam(cfg["learning_rate"])
    state = opt.init(eqx.filter(model, eqx.is_inexact_array))

    def loss(model, X, y):
        layer, clf = model
        H = layer(X.T).T  # the batch as columns: one encode of n×batch
        return _cross_entropy(clf(H), y) + 0.5 * wd * jnp.sum(clf.A**2)

    @eqx.filter_jit
    def step(model, state, X, y):
        value, grads = eqx.filter_value_and_grad(loss)(model, X, y)
        updates, state = opt.update(grads, state, eqx.filter(model, eqx.is_inexact_array))
        return eqx.apply_updates(model, updates), state, value

    rng = np.random.default_rng(cfg["seed"] + 1)
    batch = min(cfg["batch_size"], len(y_tr))
    losses = []
    for _ in range(cfg["steps"]):
        idx = rng.choice(len(y_tr), batch, replace=False)
        model, state, value = step(model, state, X_tr[idx], y_tr[idx])
        losses.append(float(value))
    layer, clf = model
    W = layer.W
    E_tr, E_te = codes(X_tr, W), codes(X_te, W)
    timings["end_to_end_s"] = time.perf_counter() - t

    return {
        "config": cfg,
        "test_accuracy": {
            "end_to_end": _accuracy(clf(E_te), y_te),
            "unsupervised_nmf": _accuracy(clf_nmf(C_te), y_te),
            "raw_pixels": _accuracy(clf_raw(X_te), y_te),
        },
        "train_accuracy": {
            "end_to_end": _accuracy(clf(E_tr), y_tr),
            "unsupervised_nmf": _accuracy(clf_nmf(C_tr), y_tr),
            "raw_pixels": _accuracy(clf_raw(X_tr), y_tr),
        },
        "code_sparsity": {
            "end_to_end": float(jnp.mean(E_te <= 1e-8)),
            "unsupervised_nmf": float(jnp.mean(C_te <= 1e-8)),
        },
        "n_train": int(len(y_tr)),
        "n_test": int(len(y_te)),
        "timings": timings,
        "total_s": time.perf_counter() - t_start,
        "train_loss": np.asarray(losses),
    }


class TaskDrivenDigitsStudy(Study):
    """End-to-end NMF layer vs unsupervised NMF codes vs raw pixels on the digits."""

    name = "task-driven-digits"
    description = "digits: end-to-end NMF layer vs unsupervised NMF codes vs raw pixels"

    def parse(self, section: Mapping[str, Any]) -> dict:
        return _check(section)

    def tasks(self, config: dict) -> list[Task]:
        settings = {k: v for k, v in config.items() if k != "seeds"}
        return [
            Task(f"digits__r{config['rank']}__s{seed}", {**settings, "seed": seed})
            for seed in config["seeds"]
        ]

    def compute(self, task: Task, data: Any) -> dict:
        return run(task.params)

    def tables(self, results, config: dict) -> dict[str, list[dict]]:
        rows = []
        for task in self.tasks(config):
            result = results.get(task.key)
            if result is None:
                continue
            for model in MODELS:
                rows.append(
                    {
                        "seed": task.params["seed"],
                        "model": model,
                        "test_accuracy": result["test_accuracy"][model],
                        "train_accuracy": result["train_accuracy"][model],
                        "code_zero_fraction": result["code_sparsity"].get(model),
                    }
                )
        return {"accuracy": rows}

    def figures(self, results, config: dict) -> dict:
        from experiments.figures import new_figure

        done = [results[t.key] for t in self.tasks(config) if t.key in results]
        if not done:
            return {}
        fig = new_figure(figsize=(10, 3.8), layout="constrained")
        ax_acc, ax_loss = fig.subplots(1, 2)
        lo = min(min(r["test_accuracy"].values()) for r in done)
        floor = max(0.0, lo - 0.05)
        for i, model in enumerate(MODELS):
            accs = [r["test_accuracy"][model] for r in done]
            ax_acc.bar(i, np.mean(accs), color=f"C{i}", alpha=0.7)
            ax_acc.plot([i] * len(accs), accs, "k.", ms=6)
            ax_acc.text(i, floor + 0.005, f"mean {np.mean(accs):.3f}", ha="center")
        ax_acc.set_ylim(floor, 1.0)
        ax_acc.set_xticks(range(len(MODELS)), [m.replace("_", " ") for m in MODELS])
        ax_acc.set_ylabel(f"test accuracy ({done[0]['n_test']} images)")
        ax_acc.set_title(f"linear classifier on each input (rank {config['rank']}, seeds as dots)")
        for r in done:
            ax_loss.plot(np.asarray(r["train_loss"]), lw=0.8, label=f"seed {r['config']['seed']}")
        ax_loss.set_xlabel("Adam step (end to end)")
        ax_loss.set_ylabel("minibatch cross-entropy")
        ax_loss.set_yscale("log")
        ax_loss.legend(fontsize=8)
        fig.suptitle("task-driven NMF dictionary (Mairal et al. 2012) on scikit-learn digits")
        return {"accuracy": fig}
