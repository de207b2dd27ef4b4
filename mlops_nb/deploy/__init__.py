"""Deployment packages: export one from a notebook run, verify and load it, predict with it,
retrain and roll it back, and schedule the retraining.

Where each thing lives:

- ``layout``: the package on disk (file names, root, versions, ``current``, lock, durable writes);
  ``verify``: the manifest and its checksums; ``model``: the allow-listed model load and the
  rebuild from pipeline.json; ``schema``, ``reference``, ``sources``, ``settings``, ``metrics``,
  ``exits``, ``predict``: one concern each.
- ``export``: the export (refusals, files, the one store record); ``script/`` turns recorded cells
  into retrain.py (``clean``, ``plan``, ``render``, ``load``); ``materialize`` runs it in a
  subprocess (``replay``) to build the schema and reference; ``pipeline``: pipeline.json and
  requirements.txt.
- ``retrain/``: the job, its store records, its new version, its log lines and its one command;
  ``runtime``: what a generated retrain.py calls; ``rollback``.
- ``schedule``: cron line, next runs, Airflow DAG; ``kubernetes``: the CronJob, the serving
  Deployment and Service, their Dockerfile; ``cron``: the user's crontab.

Imports point one way inside the package (``lint-imports`` keeps it acyclic), and nothing here
imports IPython, ipywidgets or :mod:`mlops_nb.notebook`.
"""
