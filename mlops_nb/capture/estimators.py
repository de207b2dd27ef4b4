"""Fitted scikit-learn estimators and hyperparameter searches -> records, and a run's flat params."""

from __future__ import annotations

from mlops_nb.capture.kinds import class_path, is_estimator, is_search
from mlops_nb.capture.values import json_safe

#: A search with more candidates than this is recorded with its first ``MAX_CANDIDATES`` only.
MAX_CANDIDATES = 10_000

_STEP_LISTS = ("steps", "transformers", "transformer_list", "estimators")


def _estimator_spec(est: object, depth: int = 0) -> dict:
    """``{"class", "params"}`` of an estimator, plus ``"steps"`` for the estimators it nests."""
    params = est.get_params(deep=False)  # type: ignore[attr-defined]
    spec: dict = {"class": class_path(est), "params": json_safe(params)}
    if depth >= 5:
        return spec
    steps = []
    for key, value in params.items():
        if is_estimator(value):
            steps.append({"name": key, **_estimator_spec(value, depth + 1)})
        elif key in _STEP_LISTS and isinstance(value, list | tuple):
            for item in value:
                if not (isinstance(item, tuple) and len(item) >= 2):
                    continue
                step_name, step = item[0], item[1]
                entry: dict = {"name": json_safe(step_name)}
                if is_estimator(step):
                    entry.update(_estimator_spec(step, depth + 1))
                else:  # "passthrough", "drop", None
                    entry["class"] = json_safe(step)
                if len(item) > 2:  # ColumnTransformer: (name, transformer, columns)
                    entry["columns"] = json_safe(item[2])
                steps.append(entry)
    if steps:
        spec["steps"] = steps
    return spec

#: Parameters that say how an estimator runs, not what it is: left out of a run's params.
RUNTIME_PARAMS = frozenset({"memory", "verbose", "n_jobs", "transform_input", "verbose_feature_names_out", "copy"})


def flat_params(est: object) -> dict[str, str | int | float | bool]:
    """An estimator's scalar hyperparameters, nested ones included (``clf__C``), for a run's params.

    Nested estimators, callables, None and runtime switches (``n_jobs``, ``verbose``, ...) are left
    out: they are in the capture record, and as columns of a runs table they are noise.
    """
    try:
        params = est.get_params(deep=True)  # type: ignore[attr-defined]
    except Exception:
        return {}
    flat = {}
    for key, value in params.items():
        if key.rpartition("__")[2] in RUNTIME_PARAMS or value is None:
            continue
        if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
            value = value.item()
        if isinstance(value, (str, int, float, bool)):
            flat[key] = value
    return flat


def _is_fitted(est: object) -> bool:
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(est)
    except (NotFittedError, TypeError):
        return False
    return True


def describe_estimator(name: str, est: object) -> dict | None:
    """Describe a *fitted* scikit-learn estimator bound to ``name``; ``None`` if unfitted.

    Returns ``{"kind": "estimator", "name", "class", "params", "steps"?, "feature_names_in",
    "n_features_in"}``: ``class`` is the module and qualified name
    (``sklearn.linear_model._logistic.LogisticRegression``); ``params`` is
    ``get_params(deep=False)`` made JSON-safe, nested estimators appearing as their class path;
    ``steps`` (only when the estimator nests others: Pipeline steps, ColumnTransformer
    transformers, FeatureUnion parts, an ``estimator=`` parameter) lists each by ``name`` with its
    own ``class``, ``params`` and, recursively, ``steps`` (``columns`` too, for a
    ColumnTransformer). ``feature_names_in`` is the list of input column names when the estimator
    was fitted on a DataFrame with string column names, else ``None``.
    """
    if not is_estimator(est) or not _is_fitted(est):
        return None
    names = getattr(est, "feature_names_in_", None)
    n_features = getattr(est, "n_features_in_", None)
    return {
        "kind": "estimator",
        "name": name,
        **_estimator_spec(est),
        "feature_names_in": None if names is None else [str(n) for n in names],
        "n_features_in": None if n_features is None else int(n_features),
    }


def describe_search(name: str, search: object) -> dict | None:
    """Describe a fitted hyperparameter search (``GridSearchCV``, ``RandomizedSearchCV``, the
    ``Halving*`` ones: anything with ``cv_results_`` and ``best_params_``); ``None`` otherwise.

    Returns ``{"kind": "search", "name", "class", "estimator_class", "scoring", "refit_metric",
    "best_params", "best_score", "best_index", "n_candidates", "candidates"}`` (``estimator_class``:
    the refitted best estimator's, the model that is saved and served; None without refit); each
    candidate is ``{"params", "mean_test_score", "std_test_score", "rank_test_score"}`` (plus ``"iter"`` and
    ``"n_resources"`` for successive-halving searches), in ``cv_results_`` order. With several
    scorers the columns are those of the metric named by ``refit``. At most ``MAX_CANDIDATES``
    candidates are listed; ``n_candidates`` is the full count.
    """
    if not is_search(search):
        return None
    results = search.cv_results_  # type: ignore[attr-defined]
    refit = getattr(search, "refit", True)
    metric = refit if isinstance(refit, str) else "score"
    if f"mean_test_{metric}" not in results:
        metric = "score"
    params = list(results["params"])

    def column(key: str) -> list:
        values = results.get(key)
        return [None] * len(params) if values is None else list(values)

    means = column(f"mean_test_{metric}")
    stds = column(f"std_test_{metric}")
    ranks = column(f"rank_test_{metric}")
    extras = {key: column(key) for key in ("iter", "n_resources") if key in results}
    candidates = []
    for i, candidate in enumerate(params[:MAX_CANDIDATES]):
        entry = {
            "params": json_safe(candidate),
            "mean_test_score": json_safe(means[i]),
            "std_test_score": json_safe(stds[i]),
            "rank_test_score": json_safe(ranks[i]),
        }
        entry.update({key: json_safe(values[i]) for key, values in extras.items()})
        candidates.append(entry)
    return {
        "kind": "search",
        "name": name,
        "class": class_path(search),
        "estimator_class": class_path(search.best_estimator_) if hasattr(search, "best_estimator_") else None,
        "scoring": json_safe(getattr(search, "scoring", None)),
        "refit_metric": None if metric == "score" else metric,
        "best_params": json_safe(search.best_params_),  # type: ignore[attr-defined]
        "best_score": json_safe(getattr(search, "best_score_", None)),
        "best_index": json_safe(getattr(search, "best_index_", None)),
        "n_candidates": len(params),
        "candidates": candidates,
    }
