"""mlops-nb: record the machine-learning lifecycle of a notebook into a local SQLite store.

>>> import mlops_nb as mnb                     # doctest: +SKIP
>>> with mnb.start("churn") as run:           # doctest: +SKIP
...     run.log_metric("f1", 0.91)

Names are imported on first use so that ``import mlops_nb`` stays fast and pulls in neither pandas,
scikit-learn, IPython nor ipywidgets.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "start": "mlops_nb.tracking",
    "Run": "mlops_nb.tracking",
    "get_run": "mlops_nb.tracking",
    "runs": "mlops_nb.tracking",
    "metric_history": "mlops_nb.tracking",
    "MlopsError": "mlops_nb.errors",
    "BadData": "mlops_nb.errors",
    "StoreError": "mlops_nb.errors",
    "RunNotFound": "mlops_nb.errors",
    "RunEnded": "mlops_nb.errors",
    "InvalidValue": "mlops_nb.errors",
    "FilterError": "mlops_nb.errors",
    "RequirementError": "mlops_nb.errors",
    "StageError": "mlops_nb.errors",
    "RegistryError": "mlops_nb.errors",
    "ExportError": "mlops_nb.errors",
    "PackageError": "mlops_nb.errors",
    "ChecksumError": "mlops_nb.errors",
    "UntrustedTypes": "mlops_nb.errors",
    "SchemaMismatch": "mlops_nb.errors",
    "DataNotFound": "mlops_nb.errors",
    "PackageLocked": "mlops_nb.errors",
    "SyncError": "mlops_nb.errors",
    "ServerUnreachable": "mlops_nb.errors",
    "SyncAuthRefused": "mlops_nb.errors",
    "STAGES": "mlops_nb.stages",
    "register": "mlops_nb.tracking.registry",
    "promote": "mlops_nb.tracking.registry",
    "models": "mlops_nb.tracking.registry",
    "export": "mlops_nb.deploy.export",
    "load_model": "mlops_nb.deploy.predict",
    "predict": "mlops_nb.deploy.predict",
    "rollback": "mlops_nb.deploy.rollback",
    "status": "mlops_nb.notebook.widgets.status",
    "compare": "mlops_nb.notebook.widgets.compare",
}

__all__ = [*_LAZY, "load_ipython_extension", "unload_ipython_extension"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mlops_nb' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    if name in ("start", "get_run"):  # runs of this process push themselves when the store says so
        import_module("mlops_nb.sync.auto").install()
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext mlops_nb``: register ``%mlops`` and ``%%stage`` (safe to call again)."""
    from mlops_nb.notebook.magics import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from mlops_nb.notebook.magics import unload

    unload(ipython)
