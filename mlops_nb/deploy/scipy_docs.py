"""A retraining job or a scoring server imports scipy without building its array-API docstring tables.

Importing scikit-learn imports ``scipy.stats`` (``sklearn.utils.fixes`` does, at its top). Since
scipy 1.15, each of the ~470 functions scipy marks with its ``xp_capabilities`` decorator gets a
table of supported array libraries appended to its docstring at import: the decorator parses the
docstring with scipy's numpydoc parser (``FunctionDoc``), adds the table to its Notes and renders it
again. Measured here: ~0.2 s of a ~2 s retraining job, for docstrings no job or server reads (the
cost scipy's own ``-OO`` branch skips for ``scipy.stats``' distributions; see scipy#22510).

:func:`skip_docstring_tables` makes that decorator keep each function's docstring as it is: it
replaces ``FunctionDoc`` in ``scipy._lib._array_api`` (the name the decorator calls) with
:class:`_Unparsed`, which hands the docstring back unparsed and drops the table. Nothing else
changes: the decorator still records each function's capabilities (what scipy's own tests read),
and the functions are the same objects. It is guarded by the decorator's source: when the
SHA-256 of ``xp_capabilities`` is not :data:`REVIEWED_SOURCE` (scipy 1.17's), or scipy's array-API
module is already imported with its docstrings built, nothing is replaced. Only the ``retrain``
and ``serve`` commands call it, never a notebook's kernel; ``MLOPS_NB_SCIPY_DOCS=1`` turns it off.
"""

from __future__ import annotations

import hashlib
import os
import sys
from typing import Any

#: SHA-256 of ``scipy._lib._array_api.xp_capabilities``' source as reviewed (scipy 1.17.1).
REVIEWED_SOURCE = "ba29df5337dc308429a77cbe53a322f51929f33e919d1ccac33770d965e6f0e6"
OFF_VAR = "MLOPS_NB_SCIPY_DOCS"
_skipped = False


class _Unparsed:
    """What ``xp_capabilities`` uses of numpydoc's ``FunctionDoc``, without parsing: ``doc["Notes"]``
    takes the table (and drops it); ``str(doc)`` is a signature line, then the docstring as it was
    (the decorator removes the first line and leading blanks)."""

    def __init__(self, func: Any) -> None:
        self.doc = getattr(func, "__doc__", None) or ""
        self.dropped: list[str] = []

    def __getitem__(self, section: str) -> list[str]:
        return self.dropped

    def __str__(self) -> str:
        return "\n" + self.doc


def skip_docstring_tables() -> bool:
    """Replace the parser scipy's ``xp_capabilities`` decorator calls, when the guard allows (before
    scikit-learn or scipy.stats is imported); whether it is replaced now."""
    global _skipped
    if _skipped:
        return True
    if os.environ.get(OFF_VAR) == "1" or "scipy.stats" in sys.modules or "scipy.special" in sys.modules:
        return False  # off, or too late: the docstrings are built already
    try:
        import scipy._lib._array_api as array_api
    except ImportError:  # scipy is not installed (or of another layout): nothing to skip
        return False
    if _source_digest(getattr(array_api, "xp_capabilities", None)) != REVIEWED_SOURCE:
        return False
    if not hasattr(array_api, "FunctionDoc"):
        return False
    array_api.FunctionDoc = _Unparsed
    _skipped = True
    return True


def skipped() -> bool:
    """Whether this process imports scipy without the docstring tables (tests, benchmarks)."""
    return _skipped


def _source_digest(function: Any) -> str | None:
    import inspect

    try:
        return hashlib.sha256(inspect.getsource(function).encode()).hexdigest()
    except (OSError, TypeError):
        return None
