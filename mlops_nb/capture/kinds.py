"""Cheap type checks on any object: pandas frame? scikit-learn estimator? which class?

None of these imports anything: a notebook that never loaded pandas cannot hold a DataFrame, and
an estimator is recognised by the methods of its class. The rest of ``capture`` asks these first,
and only then imports the heavy library that describes the object.
"""

from __future__ import annotations

import sys


def _has_class(obj: object, module_prefix: str, names: frozenset[str] | tuple[str, ...]) -> bool:
    """True if ``obj``'s type, or a base class, is ``module_prefix*.NAME`` for one of ``names``."""
    try:
        mro = type(obj).__mro__
    except Exception:
        return False
    return any(c.__name__ in names and str(getattr(c, "__module__", "")).startswith(module_prefix) for c in mro)


_PANDAS_NAMES = frozenset({"DataFrame", "Series"})


def is_pandas(obj: object) -> bool:
    """A pandas DataFrame or Series (or a subclass of one)."""
    return "pandas" in sys.modules and _has_class(obj, "pandas", _PANDAS_NAMES)


def is_estimator(obj: object) -> bool:
    """Duck-typed scikit-learn estimator instance: its *class* has ``fit`` and ``get_params``.

    Looking the attributes up on the type never runs an instance's ``__getattr__``, so a mock or
    proxy object that answers every attribute is not mistaken for an estimator.
    """
    if isinstance(obj, type):
        return False
    cls = type(obj)
    return callable(getattr(cls, "fit", None)) and callable(getattr(cls, "get_params", None))


def is_search(obj: object) -> bool:
    """A fitted hyperparameter search (``GridSearchCV`` and kin): an estimator with ``cv_results_``
    and ``best_params_``."""
    return is_estimator(obj) and hasattr(obj, "cv_results_") and hasattr(obj, "best_params_")


def class_path(obj_or_type: object) -> str:
    """``module.QualName`` of a class, or of an instance's class."""
    cls = obj_or_type if isinstance(obj_or_type, type) else type(obj_or_type)
    return f"{cls.__module__}.{cls.__qualname__}"
