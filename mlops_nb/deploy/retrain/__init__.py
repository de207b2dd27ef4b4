"""Retraining a package: the job (:mod:`.job`), its store records (:mod:`.records`), the version
a promoted candidate becomes (:mod:`.new_version`), its log lines (:mod:`.progress`) and its one
command line (:mod:`.command`)."""

from mlops_nb.deploy.retrain.job import Job, Outcome, run_package

__all__ = ["Job", "Outcome", "run_package"]
