"""Names older callers import from ``mlops_nb.deploy.package``, which was split into the modules
of :mod:`mlops_nb.deploy`.

Every ``retrain.py`` exported before the split calls ``mlops_nb.deploy.package.main`` and
``mlops_nb.deploy.package.working_dir``: those packages keep running, so these two stay.
``load_model``, ``verify`` and ``retrain_script`` are here only until ``mlops_nb/__init__.py``,
``mlops_nb/cli/demo.py`` and ``tests/test_notebooks.py`` import them from their own modules.
"""

from mlops_nb.deploy.layout import retrain_script
from mlops_nb.deploy.model import load_model
from mlops_nb.deploy.runtime import main, working_dir
from mlops_nb.deploy.verify import verify

__all__ = ["load_model", "main", "retrain_script", "verify", "working_dir"]
