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

Run as a script (``python -m experiments.task_driven_digits --out result.json``) or through
the experiment runner (``study = "script"``, ``module = "experiments.task_driven_digits"``):
``run(config) -> dict``.
"""

from __future__ import annotations

import argparse
import json
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

import jnmf
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


def _check(config: dict) -> dict:
    unknown = sorted(set(config) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown config keys {unknown}; allowed: {sorted(DEFAULTS)}")
    cfg = {**DEFAULTS, **config}
    if not 0 < cfg["test_size"] < 1:
        raise ValueError(f"test_size must be in (0, 1), got {cfg['test_size']}")
    for key in ("rank", "max_iter", "nmf_max_iter", "steps", "batch_size", "classifier_steps"):
        if not isinstance(cfg[key], int) or cfg[key] < 1:
            raise ValueError(f"{key} must be an integer ≥ 1, got {cfg[key]!r}")
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


def run(config: dict) -> dict:
    """Train and evaluate the three models; returns accuracies, settings and timings."""
    cfg = _check(dict(config))
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


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="path of the JSON result file")
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help=f"override defaults (JSON values), keys: {', '.join(DEFAULTS)}",
    )
    args = parser.parse_args(argv)
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = json.loads(value)
    result = run(overrides)
    result["train_loss"] = result["train_loss"].tolist()
    with open(args.out, "w") as fh:
        json.dump(result, fh, indent=2)
    print(json.dumps(result["test_accuracy"], indent=2))


if __name__ == "__main__":
    main()
