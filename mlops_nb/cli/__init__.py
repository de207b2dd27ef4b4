"""The ``mlops-nb`` command line, for terminals and cron: thin commands over tracking and deploy.

Each command's module is imported when that command runs (:data:`mlops_nb.cli.main.COMMAND_MODULES`);
:func:`~mlops_nb.cli.main.load_all` imports them all.
"""

from mlops_nb.cli.main import load_all, main

__all__ = ["load_all", "main"]
