"""Widgets over the store (composite ipywidgets; no JavaScript to build).

- :func:`status`: one run's lifecycle as a live timeline (``%mlops status``).
- :func:`compare`: the runs table with filter, sort, pages, a diff and charts (``%mlops compare``).

Importing this package imports ipywidgets; ``mlops_nb`` itself loads it only on first use.
"""

from mlops_nb.notebook.widgets.compare import CompareWidget, compare
from mlops_nb.notebook.widgets.status import StatusWidget, status

__all__ = ["CompareWidget", "StatusWidget", "compare", "status"]
