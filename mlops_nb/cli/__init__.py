"""The ``mlops-nb`` command line, for terminals and cron: thin commands over tracking and deploy."""

from mlops_nb.cli import check, ci, demo, deploy, reads, serve, sync  # noqa: F401  (each module registers its commands)
from mlops_nb.cli.main import main

__all__ = ["main"]
