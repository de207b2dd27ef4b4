"""The metrics retraining computes to compare a candidate with the champion, and the names a
requirement may use for them."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from typing import Any

CLASSIFICATION_METRICS = ("accuracy", "balanced_accuracy", "f1", "precision", "recall", "roc_auc", "log_loss")
REGRESSION_METRICS = ("r2", "mae", "mse", "rmse", "mape")
LOWER_IS_BETTER = frozenset({"log_loss", "mae", "mse", "rmse", "mape"})
_METRIC_ALIASES = {
    "auc": "roc_auc", "acc": "accuracy", "f1_macro": "f1", "mean_absolute_error": "mae",
    "mean_squared_error": "mse", "root_mean_squared_error": "rmse", "mean_absolute_percentage_error": "mape",
    "neg_log_loss": "log_loss", "logloss": "log_loss",
}
_METRIC_PREFIXES = ("validation_", "valid_", "val_", "holdout_", "test_")


def metric_key(name: str) -> str | None:
    """The metric retraining computes for a requirement's metric name (``val_f1`` -> ``f1``,
    ``auc`` -> ``roc_auc``), or None when it computes no such metric."""
    key = name.strip().lower()
    for prefix in _METRIC_PREFIXES:
        key = key.removeprefix(prefix)
    key = key.removesuffix("_score")
    key = _METRIC_ALIASES.get(key, key)
    return key if key in CLASSIFICATION_METRICS or key in REGRESSION_METRICS else None


def evaluate(model: Any, X: Any, y: Any, *, classifier: bool) -> dict[str, float]:
    """Every metric of :data:`CLASSIFICATION_METRICS` or :data:`REGRESSION_METRICS` that ``model``
    can be scored on for ``(X, y)``. Binary f1, precision and recall take the second of the sorted
    classes as positive (1 of 0/1, True, "yes" of "no"/"yes"); with more classes they are
    macro-averaged, and roc_auc is one-vs-rest."""
    import numpy as np
    from sklearn import metrics

    predicted = model.predict(X)
    out: dict[str, float] = {}

    def put(name: str, compute: Callable[[], float]) -> None:
        try:
            value = float(compute())
        except Exception:  # a metric this model or data cannot give (no predict_proba, one class)
            return
        if math.isfinite(value):
            out[name] = value

    if classifier:
        classes = getattr(model, "classes_", None)
        labels = list(classes) if classes is not None else sorted(set(np.asarray(y).tolist()))
        binary = len(labels) == 2
        # One confusion matrix gives the five label metrics (as sklearn's *_score with
        # zero_division=0), at a fraction of the cost of five validated calls.
        cm = metrics.confusion_matrix(y, predicted, labels=labels).astype("float64")
        tp, truth, guessed = np.diag(cm), cm.sum(axis=1), cm.sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            precision = np.where(guessed > 0, tp / guessed, 0.0)
            recall = np.where(truth > 0, tp / truth, 0.0)
            f1 = np.where(truth + guessed > 0, 2 * tp / (truth + guessed), 0.0)
        if cm.sum() > 0:
            out["accuracy"] = float(tp.sum() / cm.sum())
            out["balanced_accuracy"] = float(recall[truth > 0].mean())
            chosen = [len(labels) - 1] if binary else (truth + guessed > 0)
            out.update(precision=float(precision[chosen].mean()), recall=float(recall[chosen].mean()),
                       f1=float(f1[chosen].mean()))
        proba = None
        if hasattr(model, "predict_proba"):
            with contextlib.suppress(Exception):
                proba = np.asarray(model.predict_proba(X))
        if proba is not None:
            put("roc_auc", lambda: metrics.roc_auc_score(y, proba[:, 1]) if binary
                else metrics.roc_auc_score(y, proba, multi_class="ovr", labels=labels))
            put("log_loss", lambda: metrics.log_loss(y, proba, labels=labels))
        elif binary and hasattr(model, "decision_function"):
            put("roc_auc", lambda: metrics.roc_auc_score(y, model.decision_function(X)))
    else:
        put("r2", lambda: metrics.r2_score(y, predicted))
        put("mae", lambda: metrics.mean_absolute_error(y, predicted))
        put("mse", lambda: metrics.mean_squared_error(y, predicted))
        put("rmse", lambda: math.sqrt(metrics.mean_squared_error(y, predicted)))
        put("mape", lambda: metrics.mean_absolute_percentage_error(y, predicted))
    return out
