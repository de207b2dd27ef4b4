"""pipeline.json and requirements.txt: what the model is (its classes and parameters, encoded so
:func:`mlops_nb.deploy.model.rebuild_estimator` rebuilds it unfitted) and which library versions
it needs."""

from __future__ import annotations

import inspect
import json
import math
import re
import sys
from typing import Any

from mlops_nb.capture import class_path, is_estimator, json_safe
from mlops_nb.deploy.layout import FORMAT_VERSION

#: Always pinned in requirements.txt, with the distributions of any other library the model uses.
PINNED = ("scikit-learn", "numpy", "scipy", "pandas", "skops", "mlops-nb")


def pipeline_spec(est: Any) -> dict[str, Any]:
    """``{"class", "params"}`` of an estimator with every parameter encoded so that
    :func:`mlops_nb.deploy.model.rebuild_estimator` rebuilds the same unfitted estimator: nested
    estimators as ``{"estimator": spec}``, tuples, arrays, types and functions tagged."""
    return {"class": class_path(est), "params": {k: _encode(v) for k, v in est.get_params(deep=False).items()}}


def _encode(value: Any) -> Any:
    import functools

    import numpy as np

    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.generic):
        return _encode(value.item())
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else {"float": repr(value)}
    if isinstance(value, np.ndarray):
        return {"ndarray": {"data": value.tolist(), "dtype": str(value.dtype)}}
    if is_estimator(value):
        return {"estimator": pipeline_spec(value)}
    if isinstance(value, tuple):
        return {"tuple": [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"dict": {k: _encode(v) for k, v in value.items()}}
    if isinstance(value, type):
        return {"type": class_path(value)}
    if isinstance(value, functools.partial):
        return {"partial": {"func": _callable_path(value.func), "args": [_encode(a) for a in value.args],
                            "keywords": {k: _encode(v) for k, v in value.keywords.items()}}}
    if callable(value) and _callable_path(value) is not None:  # functions, ufuncs, builtins
        return {"callable": _callable_path(value)}
    params = _init_params(value)
    if params is not None:  # an object rebuilt from its constructor arguments: make_column_selector, KFold
        return {"object": {"class": class_path(value), "params": params}}
    return {"unrebuildable": json_safe(value) if not callable(value) else repr(value)[:200]}


def _init_params(value: Any) -> dict[str, Any] | None:
    """Encoded constructor arguments of a library object that keeps each one as an attribute of the
    same name (scikit-learn's convention); None for anything else."""
    cls = type(value)
    if cls.__module__.split(".")[0] not in ("sklearn", "numpy", "scipy") or not hasattr(value, "__dict__"):
        return None
    try:
        names = [p.name for p in inspect.signature(cls).parameters.values() if p.kind is p.POSITIONAL_OR_KEYWORD
                 or p.kind is p.KEYWORD_ONLY]
    except (TypeError, ValueError):
        return None
    if not all(name in vars(value) for name in names):
        return None
    return {name: _encode(vars(value)[name]) for name in names}


def _callable_path(func: Any) -> str | None:
    module = getattr(func, "__module__", None)
    name = getattr(func, "__qualname__", None) or getattr(func, "__name__", None)
    if not module or not name or "<" in name or module == "__main__":
        return None
    return f"{module}.{name}"


def pipeline_document(model: Any, model_capture: dict | None) -> dict[str, Any]:
    """pipeline.json: the spec, whether it rebuilds, and the library versions it was made with."""
    if model is None:  # a model that cannot load here (forced export): the capture's description
        spec = {k: v for k, v in ((model_capture or {}).get("summary") or {}).items() if k in ("class", "params")}
        return {"format": FORMAT_VERSION, "rebuildable": False, **spec}
    spec = pipeline_spec(model)
    text = json.dumps(spec)
    return {"format": FORMAT_VERSION, "rebuildable": '"unrebuildable"' not in text,
            "scikit-learn": distribution_version("scikit-learn"), **spec}


def requirements_txt(model: Any, *, sample_parquet: bool) -> str:
    """Exact pins (``name==version``) of the installed distributions the model needs."""
    names = list(PINNED)
    if sample_parquet:
        names.append("pyarrow")
    if model is not None:
        roots = {path.split(".", 1)[0] for path in re.findall(r'"(?:class|type|callable)": "([^"]+)"',
                                                                json.dumps(pipeline_spec(model)))}
        roots -= {"sklearn", "numpy", "scipy", "builtins", "functools"}
        if roots:
            from importlib import metadata

            owners = metadata.packages_distributions()
            names.extend(dist for root in sorted(roots) for dist in owners.get(root, [])[:1])
    lines = [f"# exact versions the model was exported with (Python {sys.version.split()[0]})"]
    for dist in dict.fromkeys(names):
        version = distribution_version(dist)
        lines.append(f"{dist}=={version}" if version else f"# {dist}: not installed at export")
    return "\n".join(lines) + "\n"


def distribution_version(distribution: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None
