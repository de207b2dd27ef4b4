"""Retraining a package: the job (:mod:`.job`), its store records (:mod:`.records`), the version
a promoted candidate becomes (:mod:`.new_version`), its log lines (:mod:`.progress`) and its one
command line (:mod:`.command`)."""

from mlops_nb.deploy.retrain.job import Job, Outcome, run_package

# `mlops_nb/__init__.py` still looks `mnb.rollback` up here; drop this line once it points at
# mlops_nb.deploy.rollback.
from mlops_nb.deploy.rollback import rollback

__all__ = ["Job", "Outcome", "rollback", "run_package"]
