"""Importing ``skops.io`` with its ufunc scan done in one pass: the same trusted-type lists, ~0.2 s sooner.

When ``skops.io`` is imported, ``skops/io/_trusted_types.py`` computes the types skops trusts by
default. One of them, ``SCIPY_UFUNC_TYPE_NAMES``, names each of scipy.special's ~230 ufuncs by the
first loaded module that holds it: scipy's ufuncs have no ``__module__``, so skops'
``whichmodule`` walks ``sys.modules`` (~1,800 modules once scikit-learn is imported) with a
``getattr`` per module, once per ufunc. That walk is ~0.2 s of a retraining job's ~2 s.

:func:`import_skops_io` imports ``skops.io`` with ``skops.io._utils.get_public_type_names``
replaced, for that import only, by :func:`public_type_names`: the same answer, found in one walk.
A plain module (``types.ModuleType``, no module ``__getattr__``) answers ``getattr`` from its
``__dict__``, so it is asked only for the names its ``__dict__`` holds; every other module is asked
exactly as skops asks. Each ufunc still gets the first module, in ``sys.modules`` order, whose
attribute is that very object, so every list skops computes, and so what it trusts and refuses, is
unchanged. tests/test_trust.py compares the lists against a plain ``import skops.io`` in a
fresh interpreter.

It is guarded by the source of the skops functions it stands in for: when the SHA-256 of
``whichmodule``, ``get_module``, ``get_type_name`` and ``get_public_type_names`` is not
:data:`REVIEWED_SOURCE` (skops 0.16.0's), or ``skops.io`` is already imported, this is a plain
``import skops.io``. ``MLOPS_NB_SKOPS_SCAN=0`` turns it off.

The other default list, ``SKLEARN_ESTIMATOR_TYPE_NAMES``, comes from scikit-learn's
``all_estimators()``, which imports every public scikit-learn module (datasets, ensembles,
clustering, ...) to find the estimators, most of them modules a job never uses: ~0.3 s for
``import skops.io`` alone, ~0.06 s in a job that has imported pandas and its model's estimators. Export
records the list in the package (:data:`~mlops_nb.deploy.layout.SKOPS_DEFAULTS_FILE`, with the
skops and scikit-learn versions it came from; checksummed like every package file). Given a
verified package version whose recorded versions are the installed ones, :func:`import_skops_io`
answers skops' ``all_estimators()`` call with the recorded names instead, for that import only:
the same list, so the same trust, without the imports. Any other versions, a missing or malformed
file: skops computes it itself.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.abc
import importlib.machinery
import json
import os
import re
import sys
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

from mlops_nb.deploy.layout import SKOPS_DEFAULTS_FILE

#: SHA-256 of the source of skops.io._utils' whichmodule, get_module, get_type_name and
#: get_public_type_names as reviewed (skops 0.16.0); any other source gets a plain import.
REVIEWED_SOURCE = "67629a776dd07c3c87d94b7fb5aff356d242841c6778a07224e009167243d33a"
_TARGET = "skops.io._trusted_types"
_used = False  # whether skops computed its lists through public_type_names in this process
_recorded = False  # whether skops' estimator list came from a package's record in this process
_ESTIMATOR = re.compile(r"sklearn(\.[A-Za-z_]\w*)+")


def import_skops_io(version: Path | None = None) -> ModuleType:
    """``skops.io``, imported (the first time) with the one-pass ufunc scan when the guard allows,
    and with the estimator list recorded in package ``version`` (a version folder the caller has
    verified) when it was recorded with the installed skops and scikit-learn."""
    if "skops.io" in sys.modules or os.environ.get("MLOPS_NB_SKOPS_SCAN") == "0":
        import skops.io

        return skops.io
    finder = _Finder(recorded_estimators(version) if version is not None else None)
    sys.meta_path.insert(0, finder)
    try:
        import skops.io
    finally:
        sys.meta_path.remove(finder)
        finder.restore()
    return skops.io


def fast_scan_used() -> bool:
    """Whether this process imported ``skops.io`` through the one-pass scan (for tests and benchmarks)."""
    return _used


def recorded_list_used() -> bool:
    """Whether skops' estimator list came from a package's record in this process (tests, benchmarks)."""
    return _recorded


def estimator_record() -> dict[str, Any]:
    """What export writes to :data:`~mlops_nb.deploy.layout.SKOPS_DEFAULTS_FILE`: skops' default
    estimator type names in this process and the versions they were computed with."""
    from mlops_nb.tracking.environment import installed_version

    import_skops_io()
    from skops.io import _trusted_types

    return {"format": 1, "skops": installed_version("skops"), "scikit-learn": installed_version("scikit-learn"),
            "estimators": list(_trusted_types.SKLEARN_ESTIMATOR_TYPE_NAMES)}


def recorded_estimators(version: Path) -> list[str] | None:
    """The estimator type names recorded in ``version`` when its record names the installed skops
    and scikit-learn versions and holds only scikit-learn class paths; None otherwise."""
    from mlops_nb.tracking.environment import installed_version

    try:
        record = json.loads((Path(version) / SKOPS_DEFAULTS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("format") != 1:
        return None
    names = record.get("estimators")
    if not isinstance(names, list) or not names or not all(type(n) is str and _ESTIMATOR.fullmatch(n) for n in names):
        return None
    installed = {"skops": installed_version("skops"), "scikit-learn": installed_version("scikit-learn")}
    if any(record.get(dist) != found for dist, found in installed.items()):
        return None
    return names


def _standing_in(names: list[str], real: Any) -> Any:
    """scikit-learn's ``all_estimators()`` as skops calls it (no filter), answered from ``names``: a
    class named and placed as each recorded one, which is all skops reads of it (``__module__``
    and ``__name__``)."""

    def all_estimators(type_filter: Any = None) -> list[tuple[str, type]]:
        global _recorded
        if type_filter is not None:  # not how skops calls it: the real answer
            return real(type_filter)
        _recorded = True
        out = []
        for name in names:
            module, _, cls = name.rpartition(".")
            out.append((cls, type(cls, (), {"__module__": module})))
        return out

    return all_estimators


class _Finder(importlib.abc.MetaPathFinder):
    """Finds nothing itself: when ``skops.io._trusted_types`` is about to be imported, it puts
    :func:`public_type_names` in ``skops.io._utils`` (if that source is the reviewed one)."""

    def __init__(self, estimators: list[str] | None = None) -> None:
        self.utils: Any = None
        self.original: Any = None
        self.estimators = estimators
        self.sklearn_utils: Any = None
        self.all_estimators: Any = None
        self.seen = False

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> None:
        if fullname != _TARGET or self.seen:
            return None
        self.seen = True
        utils = importlib.import_module("skops.io._utils")
        if _source_digest(utils) == REVIEWED_SOURCE:
            self.utils, self.original = utils, utils.get_public_type_names
            utils.get_public_type_names = _marking(public_type_names)
        if self.estimators is not None:
            self.sklearn_utils = importlib.import_module("sklearn.utils")
            self.all_estimators = self.sklearn_utils.all_estimators
            self.sklearn_utils.all_estimators = _standing_in(self.estimators, self.all_estimators)
        return None  # the ordinary finders import it

    def restore(self) -> None:
        """Put back what :meth:`find_spec` replaced (skops.io is imported, or failed to)."""
        if self.utils is not None:
            self.utils.get_public_type_names = self.original
        if self.sklearn_utils is not None:
            self.sklearn_utils.all_estimators = self.all_estimators


def _marking(scan: Any) -> Any:
    def get_public_type_names(module: ModuleType, oftype: type) -> list[str]:
        global _used
        _used = True
        return scan(module, oftype)

    return get_public_type_names


def _source_digest(utils: ModuleType) -> str | None:
    import inspect

    try:
        names = ("whichmodule", "get_module", "get_type_name", "get_public_type_names")
        source = "".join(inspect.getsource(getattr(utils, name)) for name in names)
    except (AttributeError, OSError, TypeError):
        return None
    return hashlib.sha256(source.encode()).hexdigest()


def public_type_names(module: ModuleType, oftype: type) -> list[str]:
    """skops' ``get_public_type_names(module, oftype)``: the sorted ``"<module>.<name>"`` of every
    public object of ``oftype`` in ``module``, kept when it starts with ``module``'s parent package;
    objects without ``__module__`` are named by the first module of ``sys.modules`` holding them."""
    prefix = module.__name__.rpartition(".")[0]
    found = [obj for attr in dir(module) if issubclass((obj := getattr(module, attr)).__class__, oftype)]
    where: dict[int, str] = {}
    pending: dict[str, list[Any]] = {}
    for obj in found:
        named = getattr(obj, "__module__", None)
        if named is not None:
            where[id(obj)] = named
        else:
            pending.setdefault(obj.__name__, []).append(obj)
    if any("." in name for name in pending):  # skops resolves dotted names another way
        from skops.io._utils import whichmodule

        for obj in (o for objs in pending.values() for o in objs):
            where[id(obj)] = whichmodule(obj, obj.__name__)
        pending = {}
    # a dunder name may be a ModuleType attribute rather than a __dict__ entry: always asked
    dunder = {name for name in pending if name.startswith("__")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # as skops' whichmodule does
        for module_name, candidate in sys.modules.copy().items():
            if not pending:
                break
            if module_name in ("__main__", "__mp_main__") or candidate is None:
                continue
            space = candidate.__dict__ if type(candidate) is ModuleType else None
            if space is not None and "__getattr__" not in space:
                names = (pending.keys() & space.keys()) | (dunder & pending.keys())
            else:  # a module that may compute attributes: asked for every name, as skops asks
                names = list(pending)
            for name in names:
                try:
                    value = getattr(candidate, name, None)
                except (AttributeError, ImportError):
                    continue
                left = [obj for obj in pending[name] if obj is not value]
                for obj in pending[name]:
                    if obj is value:
                        where[id(obj)] = module_name
                if left:
                    pending[name] = left
                else:
                    del pending[name]
    for obj in (o for objs in pending.values() for o in objs):
        where[id(obj)] = "__main__"  # skops' answer for an object no module holds
    return sorted({name for obj in found if (name := f"{where[id(obj)]}.{obj.__name__}").startswith(prefix)})
