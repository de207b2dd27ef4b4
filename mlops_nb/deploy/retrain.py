"""The retraining runtime: what an exported package's ``retrain.py`` and ``mlops-nb retrain`` run.

One job, in this order (DESIGN.md section 4), each step one log line under cron (a progress bar at
a terminal), and one last line that says how it ended and why:

1. **lock**: take the package's lock without waiting; another job holding it -> exit 75.
2. **package**: open the store (``--store``, else ``$MLOPS_NB_STORE``, else the store the package
   was exported from) and start a ``retraining`` run linked to the notebook run; verify every
   checksum of the current version (82) and the installed library versions against
   ``requirements.txt`` (78); read ``settings.json`` (78).
3. **data**: ``--data SOURCE`` (else the source given at export, else the notebook's own data step):
   CSV / Parquet / JSON paths and globs, or a database URL with ``--query SQL`` (SQLAlchemy,
   when installed). Missing, empty or too few rows -> 66.
4. **validate** against ``schema.json``: each missing column, wrong dtype or unexpected missing
   value is named -> 65.
5. **prepare**: the notebook's features and selection steps make the model's X and y.
6. **drift**: :func:`mlops_nb.drift.dataset_drift` of the fresh table against the reference, and
   :func:`~mlops_nb.drift.prediction_drift` of the champion's scores; every column is recorded in
   the store's ``drift`` table. ``settings.json`` ``"drift"`` says what drift does: ``report``
   (default: recorded, the job goes on), ``retrain`` (retrain only when drift is found, else 99),
   ``block`` (stop with 81 for a person to look; ``--force`` goes on).
7. **fit** a clone of the recorded pipeline (``pipeline.json``, its recorded params) on a training
   split of the fresh data.
8. **evaluate** the candidate and the champion on the same held-out split.
9. **decide**: the candidate must pass the requirement (80) and beat the champion by ``margin``
   on the primary metric (else 99; ``--force`` promotes any candidate that passes the requirement).
10. **promote**: register the candidate as the next model version (linked to the retraining run),
    write the next package version beside the current one (fsynced, renamed whole), swap
    ``current`` with ``os.replace``, move the registry's ``champion`` (the old one becomes
    ``previous``), keep the last three versions.
11. **record**: the run's data fingerprint, drift, candidate and champion metrics, decision, exit
    code and duration.

A kill at any moment leaves a package whose ``current`` version is complete and verifies, and a
store that SQLite's journal keeps consistent; the killed run shows as ``interrupted``, and the next
run finishes an alias move the killed one had started. :func:`rollback` swaps ``current`` back.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mlops_nb.deploy import package
from mlops_nb.deploy.package import (
    EXIT_BAD_DATA,
    EXIT_BELOW_REQUIREMENT,
    EXIT_BUG,
    EXIT_CONFIG,
    EXIT_DRIFT,
    EXIT_INTEGRITY,
    EXIT_KEPT,
    EXIT_LOCKED,
    EXIT_NO_DATA,
    EXIT_PROMOTED,
)
from mlops_nb.errors import (
    ChecksumError,
    DataNotFound,
    MlopsError,
    PackageError,
    PackageLocked,
    RunNotFound,
    SchemaMismatch,
    StoreError,
    UntrustedTypes,
)

STEPS = ("lock", "package", "data", "validate", "prepare", "drift", "fit", "evaluate", "decide", "promote",
         "record")
DRIFT_ACTIONS = ("report", "retrain", "block")

#: ``settings.json`` of a new package. Every key is optional in the file; unknown keys are refused.
DEFAULT_SETTINGS: dict[str, Any] = {
    "drift": "report",
    "margin": 0.005,
    "metric": None,
    "holdout": 0.25,
    "seed": 0,
    "min_rows": 20,
    "keep_versions": package.KEEP_VERSIONS,
    "query": None,
    "drift_config": {},
}

#: Exit status -> the word recorded as the run's ``decision`` tag.
DECISIONS = {
    EXIT_PROMOTED: "promoted", EXIT_KEPT: "kept champion", EXIT_BAD_DATA: "bad data", EXIT_NO_DATA: "no data",
    EXIT_BUG: "bug", EXIT_LOCKED: "locked", EXIT_CONFIG: "configuration", EXIT_BELOW_REQUIREMENT: "below requirement",
    EXIT_DRIFT: "drift needs a person", EXIT_INTEGRITY: "integrity",
}

CLASSIFICATION_METRICS = ("accuracy", "balanced_accuracy", "f1", "precision", "recall", "roc_auc", "log_loss")
REGRESSION_METRICS = ("r2", "mae", "mse", "rmse", "mape")
LOWER_IS_BETTER = frozenset({"log_loss", "mae", "mse", "rmse", "mape"})
_METRIC_ALIASES = {
    "auc": "roc_auc", "acc": "accuracy", "f1_macro": "f1", "mean_absolute_error": "mae",
    "mean_squared_error": "mse", "root_mean_squared_error": "rmse", "mean_absolute_percentage_error": "mape",
    "neg_log_loss": "log_loss", "logloss": "log_loss",
}
_METRIC_PREFIXES = ("validation_", "valid_", "val_", "holdout_", "test_")


class Stop(Exception):  # noqa: N818 - a way out of the job, not an error
    """Ends the job with exit status ``code`` and the one-line ``message`` that explains it."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


# -- settings ---------------------------------------------------------------------------------------


def settings_bytes(settings: Mapping[str, Any] | None = None) -> bytes:
    """The text of a ``settings.json`` (the defaults, or ``settings``)."""
    return (json.dumps(dict(settings or DEFAULT_SETTINGS), indent=2) + "\n").encode()


def read_settings(root: str | os.PathLike) -> dict[str, Any]:
    """The retraining settings of package root ``root``: ``settings.json`` over :data:`DEFAULT_SETTINGS`.
    :class:`PackageError` names a key or value that is wrong and what it may be."""
    path = Path(root) / package.SETTINGS_FILE
    settings = dict(DEFAULT_SETTINGS)
    if not path.exists():
        return settings
    try:
        given = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PackageError(f"{path} is not valid JSON ({exc}); fix it or delete it to use the defaults") from None
    if not isinstance(given, dict):
        raise PackageError(f"{path} must hold a JSON object such as {{\"drift\": \"block\"}}")
    unknown = sorted(set(given) - set(DEFAULT_SETTINGS))
    if unknown:
        raise PackageError(f"{path}: unknown setting{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                           f"the settings are {', '.join(DEFAULT_SETTINGS)}")
    settings.update(given)

    def bad(key: str, expected: str) -> PackageError:
        return PackageError(f"{path}: \"{key}\" is {json.dumps(settings[key])}; it must be {expected}")

    if settings["drift"] not in DRIFT_ACTIONS:
        raise bad("drift", " or ".join(f'"{a}"' for a in DRIFT_ACTIONS))
    if not _number(settings["margin"]) or settings["margin"] < 0:
        raise bad("margin", "a number >= 0 (0.005 means half a point of the primary metric)")
    if not _number(settings["holdout"]) or not 0.05 <= settings["holdout"] <= 0.9:
        raise bad("holdout", "the held-out share of the fresh data, between 0.05 and 0.9")
    for key in ("seed", "min_rows", "keep_versions"):
        if not isinstance(settings[key], int) or isinstance(settings[key], bool) or settings[key] < 0:
            raise bad(key, "a whole number >= 0")
    if settings["keep_versions"] < 1:
        raise bad("keep_versions", "at least 1")
    for key in ("metric", "query"):
        if settings[key] is not None and not isinstance(settings[key], str):
            raise bad(key, "a string or null")
    if not isinstance(settings["drift_config"], dict):
        raise bad("drift_config", "an object of mlops_nb.drift thresholds, e.g. {\"psi_drift\": 0.3}")
    from mlops_nb.drift import DEFAULT_CONFIG

    wrong = sorted(set(settings["drift_config"]) - set(DEFAULT_CONFIG))
    if wrong:
        raise PackageError(f"{path}: unknown drift threshold {', '.join(wrong)}; they are {', '.join(DEFAULT_CONFIG)}")
    return settings


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# -- metrics ----------------------------------------------------------------------------------------


def metric_key(name: str) -> str | None:
    """The metric retraining computes for a requirement's metric name (``val_f1`` -> ``f1``,
    ``auc`` -> ``roc_auc``), or None when it computes no such metric."""
    key = name.strip().lower()
    for prefix in _METRIC_PREFIXES:
        key = key.removeprefix(prefix)
    key = key.removesuffix("_score")
    key = _METRIC_ALIASES.get(key, key)
    return key if key in CLASSIFICATION_METRICS or key in REGRESSION_METRICS else None


def evaluate(model: Any, X: Any, y: Any, *, classifier: bool) -> dict[str, float]:
    """Every metric of :data:`CLASSIFICATION_METRICS` or :data:`REGRESSION_METRICS` that ``model``
    can be scored on for ``(X, y)``. Binary f1, precision and recall take the second of the sorted
    classes as positive (1 of 0/1, True, "yes" of "no"/"yes"); with more classes they are
    macro-averaged, and roc_auc is one-vs-rest."""
    import numpy as np
    from sklearn import metrics

    predicted = model.predict(X)
    out: dict[str, float] = {}

    def put(name: str, compute: Callable[[], float]) -> None:
        try:
            value = float(compute())
        except Exception:  # a metric this model or data cannot give (no predict_proba, one class)
            return
        if math.isfinite(value):
            out[name] = value

    if classifier:
        classes = getattr(model, "classes_", None)
        labels = list(classes) if classes is not None else sorted(set(np.asarray(y).tolist()))
        binary = len(labels) == 2
        # One confusion matrix gives the five label metrics (as sklearn's *_score with
        # zero_division=0), at a fraction of the cost of five validated calls.
        cm = metrics.confusion_matrix(y, predicted, labels=labels).astype("float64")
        tp, truth, guessed = np.diag(cm), cm.sum(axis=1), cm.sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            precision = np.where(guessed > 0, tp / guessed, 0.0)
            recall = np.where(truth > 0, tp / truth, 0.0)
            f1 = np.where(truth + guessed > 0, 2 * tp / (truth + guessed), 0.0)
        if cm.sum() > 0:
            out["accuracy"] = float(tp.sum() / cm.sum())
            out["balanced_accuracy"] = float(recall[truth > 0].mean())
            chosen = [len(labels) - 1] if binary else (truth + guessed > 0)
            out.update(precision=float(precision[chosen].mean()), recall=float(recall[chosen].mean()),
                       f1=float(f1[chosen].mean()))
        proba = None
        if hasattr(model, "predict_proba"):
            with contextlib.suppress(Exception):
                proba = np.asarray(model.predict_proba(X))
        if proba is not None:
            put("roc_auc", lambda: metrics.roc_auc_score(y, proba[:, 1]) if binary
                else metrics.roc_auc_score(y, proba, multi_class="ovr", labels=labels))
            put("log_loss", lambda: metrics.log_loss(y, proba, labels=labels))
        elif binary and hasattr(model, "decision_function"):
            put("roc_auc", lambda: metrics.roc_auc_score(y, model.decision_function(X)))
    else:
        put("r2", lambda: metrics.r2_score(y, predicted))
        put("mae", lambda: metrics.mean_absolute_error(y, predicted))
        put("mse", lambda: metrics.mean_squared_error(y, predicted))
        put("rmse", lambda: math.sqrt(metrics.mean_squared_error(y, predicted)))
        put("mape", lambda: metrics.mean_absolute_percentage_error(y, predicted))
    return out


# -- data sources -----------------------------------------------------------------------------------


def is_database_url(source: str) -> bool:
    return "://" in source and not source.startswith("file://")


def read_source(source: str, query: str | None = None) -> Any:
    """Fresh data from ``source``: a file path or glob (:func:`mlops_nb.deploy.package.read_table`), or a
    database URL (``postgresql://...``, ``sqlite:////abs/path.db``) read with ``query`` through
    SQLAlchemy. :class:`DataNotFound` when there is nothing; :class:`PackageError` when SQLAlchemy
    is missing or no query is given."""
    if not is_database_url(source):
        return package.read_table(source)
    try:
        import sqlalchemy
    except ImportError:
        raise PackageError(f"reading {_safe_url(source)} needs SQLAlchemy and the database's driver: "
                           f"pip install sqlalchemy (plus e.g. psycopg for PostgreSQL)") from None
    if not query:
        raise PackageError(f"{_safe_url(source)} is a database: give the rows to read with --query \"SELECT ...\" "
                           f"or \"query\" in settings.json")
    import pandas as pd

    try:
        engine = sqlalchemy.create_engine(source)
    except Exception as exc:
        raise PackageError(f"cannot use the database URL {_safe_url(source)}: {exc}") from None
    try:
        with engine.connect() as connection:
            table = pd.read_sql_query(sqlalchemy.text(query), connection)
    except (sqlalchemy.exc.SQLAlchemyError, pd.errors.DatabaseError) as exc:
        cause = exc.__cause__ if isinstance(exc, pd.errors.DatabaseError) and exc.__cause__ else exc
        text = str(getattr(cause, "orig", None) or cause).strip()
        first = text.splitlines()[0] if text else type(exc).__name__
        raise DataNotFound(f"no data from {_safe_url(source)} with {query!r}: {first}") from None
    finally:
        engine.dispose()
    if table.empty:
        raise DataNotFound(f"the query {query!r} on {_safe_url(source)} returned no rows")
    return table


def _safe_url(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@", 1)[-1] if "@" in url else url


def describe_source(source: str) -> str:
    return _safe_url(source) if is_database_url(source) else source


# -- the job ----------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """How a retraining run ended: exit ``code``, the one-line ``message``, and what it recorded."""

    code: int
    message: str
    run_id: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def decision(self) -> str:
        return DECISIONS.get(self.code, "unknown")


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="retrain.py", description="Retrain this package's model on fresh data (mlops-nb).",
        epilog="Exit status: 0 promoted, 99 champion kept, 65 bad data, 66 no data, 75 already running, "
               "78 configuration, 80 below the requirement, 81 drift needs a person, 82 integrity, 70 a bug.")
    parser.add_argument("--data", metavar="SOURCE",
                        help="CSV, Parquet or JSON path or glob, or a database URL (with --query)")
    parser.add_argument("--query", metavar="SQL", help="the SELECT that reads fresh data from a database URL")
    parser.add_argument("--force", action="store_true",
                        help="promote a candidate that passes the requirement even if it does not beat the champion "
                             "by the margin, and go on despite drift that would block")
    return parser.parse_args(list(argv))


def run_package(
    package_dir: str | os.PathLike,
    *,
    prepare: Callable[[dict[str, Any]], tuple[Any, Any]] | None = None,
    notebook_data: Callable[[], dict[str, Any]] | None = None,
    argv: Sequence[str] = (),
    store: str | os.PathLike | None = None,
    out: Any = None,
) -> int:
    """Run one retraining job on the package at ``package_dir`` (its root, ``current``, a version
    folder or its retrain.py) and return the exit status (see the module docstring).

    ``prepare`` and ``notebook_data``: retrain.py's functions (default: loaded from the current
    version's retrain.py once it is verified). ``argv``: ``--data SOURCE``, ``--query SQL``,
    ``--force``. ``store``: the store to record in (default ``$MLOPS_NB_STORE``, else the store the
    package was exported from). ``out``: where the log lines go (default standard output).
    """
    stream = out or sys.stdout
    try:
        args = parse_args(argv)
    except SystemExit as exc:  # argparse printed the usage and the problem (or --help)
        if not exc.code:
            return 0
        print(_line(Path(package_dir).name, EXIT_CONFIG, "bad arguments; see retrain.py --help"), file=stream,
              flush=True)
        return EXIT_CONFIG
    job = Job(Path(package_dir), args, prepare=prepare, notebook_data=notebook_data, store=store, out=stream)
    return job.run().code


def _line(name: str, code: int, message: str) -> str:
    return (f"{time.strftime('%Y-%m-%d %H:%M:%S')} mlops-nb retrain {name}: exit {code} "
            f"({DECISIONS.get(code, 'unknown')}): {message}")


class _Progress:
    """One line per step (cron, files, pipes), or a tqdm progress bar at a terminal."""

    def __init__(self, out: Any):
        self.out = out
        self.name = ""
        self.bar = None
        if getattr(out, "isatty", lambda: False)():
            import shutil

            from tqdm import tqdm

            size = shutil.get_terminal_size((100, 24))  # a terminal that reports no size (0 x 0) gets 100 x 24
            self.bar = tqdm(total=len(STEPS), file=out, unit="step", leave=False, ncols=size.columns,
                            nrows=size.lines, mininterval=0,
                            bar_format="{bar:24} {n_fmt}/{total_fmt} [{elapsed}] {desc}")
            self.width = max(size.columns - 45, 20)

    def step(self, step: str, message: str) -> None:
        if self.bar is not None:
            self.bar.set_description_str(f"{step}: {message}"[:self.width], refresh=False)
            self.bar.update(1)
        else:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            print(f"{stamp} mlops-nb retrain {self.name}: [{STEPS.index(step) + 1}/{len(STEPS)}] {step}: {message}",
                  file=self.out, flush=True)

    def note(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=self.out)
        else:
            print(text, file=self.out, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class Job:
    """One retraining run of one package; :meth:`run` does everything and never raises."""

    def __init__(self, path: Path, args: argparse.Namespace, *, prepare=None, notebook_data=None,
                 store: str | os.PathLike | None = None, out: Any = None):
        self.path = path
        self.args = args
        self.prepare = prepare
        self.notebook_data = notebook_data
        self.explicit_store = store
        self.progress = _Progress(out or sys.stdout)
        self.root: Path | None = None
        self.current: Path | None = None
        self.manifest: dict[str, Any] = {}
        self.store = None
        self.run_id: int | None = None
        self.params: dict[str, Any] = {"forced": bool(args.force)}
        self.tags: dict[str, Any] = {}
        self.metrics: dict[str, float] = {}
        self.started = time.time()
        self.clock = time.perf_counter()

    # -- the whole run ---------------------------------------------------------------------------

    def run(self) -> Outcome:
        self.progress.name = self.path.name
        try:
            try:
                self.root = package.package_root(self.path)
                self.progress.name = self.root.name
                with package.locked(self.root, "retraining"):
                    self.progress.step("lock", f"holding {package.lock_path(self.root)}")
                    outcome = self._locked()
            except PackageLocked as exc:
                raise Stop(EXIT_LOCKED, f"{exc}; this run changed nothing") from None
        except Stop as stop:
            outcome = Outcome(stop.code, stop.message)
        except Exception as exc:  # every other way out gets its exit status and one line
            outcome = self._failure(exc)
        if outcome.code == EXIT_LOCKED and self.run_id is None and self.root is not None:
            self._start_run_quietly()  # an overlapping run is recorded too, without waiting for the lock
        outcome.run_id = self.run_id
        self._record(outcome)
        self.progress.close()
        self.progress.note(_line(self.progress.name, outcome.code, outcome.message))
        return outcome

    def _start_run_quietly(self) -> None:
        with contextlib.suppress(Exception):
            self.current = package.current_version(self.root)
            self.manifest = package.read_manifest(self.current)
            self.progress.name = self.manifest["model"]["name"]
            self._start_run()

    def _failure(self, exc: BaseException) -> Outcome:
        if isinstance(exc, (ChecksumError, UntrustedTypes)):
            return Outcome(EXIT_INTEGRITY, f"integrity check failed: {exc}")
        if isinstance(exc, DataNotFound):
            return Outcome(EXIT_NO_DATA, f"no data: {exc}")
        if isinstance(exc, SchemaMismatch):
            return Outcome(EXIT_BAD_DATA, f"bad data: {exc}")
        if isinstance(exc, StoreError) and "locked" in str(exc):
            return Outcome(EXIT_LOCKED, f"the store is busy: {exc}")
        if isinstance(exc, MlopsError):
            return Outcome(EXIT_CONFIG, f"configuration: {exc}")
        self.progress.close()
        self.progress.note("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip())
        return Outcome(EXIT_BUG, f"bug: {type(exc).__name__}: {exc} (traceback above; please report it)")

    def _locked(self) -> Outcome:
        root = self.root
        self.current = package.current_version(root)
        if self.current is None:
            raise ChecksumError(f"{root / package.CURRENT} points at no complete version; "
                                f"run `mlops-nb rollback {root}` to point it at the newest good one")
        self.manifest = package.read_manifest(self.current)
        self.progress.name = self.manifest["model"]["name"]
        self._start_run()
        self._check_package()
        table, frames, fingerprint = self._load()
        X, y = self._prepare(frames)
        champion = package.load_model(self.current, verify_files=False)
        self._drift(table, champion, X)
        split = self._split(champion, X, y)
        candidate = self._fit(champion, split)
        cand, champ = self._evaluate(candidate, champion, split)
        decision = self._decide(cand, champ)
        return self._promote(candidate, decision, table, split, fingerprint)

    # -- steps -------------------------------------------------------------------------------------

    def _start_run(self) -> None:
        from mlops_nb import store as store_module
        from mlops_nb import tracking

        chosen = self.explicit_store or os.environ.get(store_module.ENV_VAR) or self.manifest.get("store")
        self.store = store_module.open_store(chosen)
        run = self.manifest["run"]
        try:
            started = tracking.start(run["project"], name=f"retrain-{self.manifest['model']['name']}",
                                     kind="retraining", parent=run["id"], store=self.store)
        except RunNotFound:
            raise PackageError(
                f"the store {self.store.path} has no run {run['id']}, the notebook run this package comes from; "
                f"record in the store it was exported from ({self.manifest.get('store')}): set MLOPS_NB_STORE to it "
                f"or pass --store") from None
        self.run_id = started.id
        self.params.update(package=str(self.root), model=self.manifest["model"]["name"],
                           champion_version=self.manifest["model"]["version"], champion_package=self.current.name)

    def _check_package(self) -> None:
        manifest = package.verify(self.current)
        mismatches = package.version_mismatches(self.current)
        if mismatches:
            raise PackageError(f"installed libraries differ from the package's pins: {'; '.join(mismatches)}. "
                               f"Install them (pip install -r {self.current / 'requirements.txt'}) or export again")
        self.settings = read_settings(self.root)
        self.params.update(drift_action=self.settings["drift"], margin=self.settings["margin"],
                           holdout=self.settings["holdout"], seed=self.settings["seed"])
        self._complete_interrupted_promotion()
        if self.prepare is None:
            try:
                script = package.load_script(self.current)
            except Exception as exc:
                raise PackageError(f"{self.current / package.SCRIPT_FILE} does not load: "
                                   f"{type(exc).__name__}: {exc}") from None
            self.prepare, self.notebook_data = script.prepare, getattr(script, "notebook_data", None)
        number = package.version_number(self.current)
        self.progress.step("package", f"{self.manifest['model']['name']} version {manifest['model']['version']} "
                                      f"(package v{number or 0:04d}): {len(manifest['files'])} files verified, "
                                      f"library versions match; run {self.run_id} in {self.store.path}")

    def _complete_interrupted_promotion(self) -> None:
        """A job killed between swapping ``current`` and moving the registry's ``champion`` left
        the registry behind the package: finish that alias move (only that one)."""
        from mlops_nb.tracking import registry

        name, version = self.manifest["model"]["name"], self.manifest["model"]["version"]
        retrained = self.manifest.get("retrained") or {}
        if not retrained.get("run_id") or self.store.aliases(name).get("champion") == version:
            return
        run = next((r for r in self.store.child_runs(self.manifest["run"]["id"])
                    if r["id"] == retrained["run_id"]), None)
        if run is None or run["status"] != "interrupted" or run["tags"].get("promoting") != str(version):
            return
        later = [h for h in self.store.alias_history(name)
                 if h["alias"] == "champion" and h["time"] > run["start_time"]]
        if later:
            return  # someone moved the champion since: their choice stands
        registry.promote(name, version, "champion", by="mlops-nb retrain", run=self.run_id, store=self.store,
                         reason=f"completing the promotion of retraining run {run['id']}, which was interrupted")
        self.progress.note(f"completed the interrupted promotion of {name} version {version} (run {run['id']})")

    def _load(self) -> tuple[Any, dict[str, Any], str]:
        from mlops_nb.capture import fingerprint

        schema = package.read_schema(self.current)
        source = self.args.data or self.manifest.get("data_source")
        query = self.args.query or self.settings["query"]
        if source:
            table = read_source(source, query)
            where = describe_source(source)
            self.params["data_source"] = where
            data_fp = fingerprint(table)
            self.progress.step("data", f"read {len(table):,} rows x {table.shape[1]} columns from {where}")
            try:
                frames = package.bind(table, schema)
            except SchemaMismatch as exc:
                raise SchemaMismatch(f"{where}: {exc}", exc.problems) from None
            table = _bound_table(frames, schema)
        else:
            if self.notebook_data is None:
                raise DataNotFound("no data source: pass --data SOURCE (the package was exported without one)")
            try:
                with contextlib.redirect_stdout(sys.stderr):
                    frames = self.notebook_data()
            except FileNotFoundError as exc:
                raise DataNotFound(f"the notebook's data step found no data: {exc}") from None
            self.params["data_source"] = "the notebook's data step"
            problems = []
            for name, frame in frames.items():
                columns = (schema.get("frames", {}).get(name) or {}).get("columns")
                if columns:
                    problems += package.check_frame(frame, columns)[0]
            if problems:
                raise SchemaMismatch(f"the notebook's data step: {'; '.join(problems)}", problems)
            table = _bound_table(frames, schema)
            data_fp = fingerprint(table)
            self.progress.step("data", f"ran the notebook's data step: {len(table):,} rows x {table.shape[1]} columns")
        if table is None or len(table) == 0:
            raise DataNotFound("the fresh data holds no rows")
        if len(table) < self.settings["min_rows"]:
            raise DataNotFound(f"only {len(table)} rows of fresh data; retraining needs at least "
                               f"{self.settings['min_rows']} (\"min_rows\" in settings.json)")
        self.tags["data_fingerprint"] = data_fp
        self.metrics["rows"] = len(table)
        self.progress.step("validate", f"matches schema.json ({table.shape[1]} columns), fingerprint {data_fp[:12]}")
        return table, frames, data_fp

    def _prepare(self, frames: dict[str, Any]) -> tuple[Any, Any]:
        schema = package.read_schema(self.current)
        try:
            with contextlib.redirect_stdout(sys.stderr):
                X, y = self.prepare(dict(frames))
        except Exception as exc:
            raise RuntimeError(f"retrain.py's features/selection steps failed on the fresh data: "
                               f"{type(exc).__name__}: {exc}") from exc
        X = package.conform(X, schema["input"]["columns"], what="the prepared model input")
        if not hasattr(y, "isna") and len(y) == len(X):  # an array: a Series aligned with X
            import numpy as np
            import pandas as pd

            y = pd.Series(np.asarray(y).ravel(), index=X.index, name=schema.get("target"))
        if len(y) != len(X):
            raise SchemaMismatch(f"the prepared X has {len(X)} rows but y has {len(y)}", [])
        if hasattr(y, "isna") and bool(y.isna().any()):
            raise SchemaMismatch(f"the target has {int(y.isna().sum())} missing values", [])
        self.progress.step("prepare", f"X {X.shape[0]:,} rows x {X.shape[1]} columns, y {len(y):,} rows")
        return X, y

    def _drift(self, table: Any, champion: Any, X: Any) -> None:
        from mlops_nb import drift

        profile = package.read_json(self.current, package.PROFILE_FILE)
        config = {**drift.DEFAULT_CONFIG, **self.settings["drift_config"]}
        small = int(profile.get("n_rows", 0)) <= config["small_sample"]
        sample = package.read_reference(self.current, with_sample=True)[1] if small else None
        report = drift.dataset_drift(profile, table, sample=sample, config=config)
        prediction = None
        if profile.get("scores"):
            scored = package.model_scores(champion, X)
            if scored is not None:
                prediction = drift.prediction_drift(profile["scores"], scored[1], config=config)
        rows = [c.to_dict() for c in report.columns]
        if prediction is not None:
            rows.append({**prediction.to_dict(), "kind": "prediction"})
        self.store.add_drift(self.run_id, rows)
        self.store.add_artifact(self.run_id, "drift.json", self.store.put_bytes(json.dumps(
            {"dataset": report.to_dict(), "prediction": prediction.to_dict() if prediction else None},
            separators=(",", ":")).encode()), kind="drift")
        self.metrics["drift_share"] = report.share
        if prediction is not None and prediction.value is not None:
            self.metrics["prediction_psi"] = float(prediction.value)
        drifted = report.dataset_drift or (prediction is not None and prediction.verdict == "drift")
        self.tags["dataset_drift"] = str(report.dataset_drift).lower()
        summary = report.summary()
        if prediction is not None:
            summary += f"; prediction {prediction.verdict} (PSI {prediction.value or 0:.3f})"
        action = self.settings["drift"]
        self.progress.step("drift", f"{summary}; on drift: {action}")
        if drifted and action == "block" and not self.args.force:
            raise Stop(EXIT_DRIFT, f"drift needs a person: {summary}. settings.json says \"drift\": \"block\": look "
                                   f"at the drift rows of run {self.run_id}, then run `mlops-nb retrain {self.root} "
                                   f"--force` to retrain anyway")
        if not drifted and action == "retrain" and not self.args.force:
            raise Stop(EXIT_KEPT, f"champion kept: no drift found ({summary}) and settings.json says \"drift\": "
                                  f"\"retrain\" (retrain only on drift); --force retrains anyway")

    def _split(self, champion: Any, X: Any, y: Any) -> dict[str, Any]:
        from sklearn.base import is_classifier
        from sklearn.model_selection import train_test_split

        classifier = bool(is_classifier(champion))
        if classifier and y.nunique() < 2:
            raise SchemaMismatch(f"the target of the fresh data has a single value ({y.iloc[0]!r}); a classifier "
                                 f"needs at least two classes", [])
        stratify = y if classifier and int(y.value_counts().min()) >= 2 else None
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=self.settings["holdout"], random_state=self.settings["seed"], stratify=stratify)
        return {"X": X, "y": y, "X_train": X_train, "X_test": X_test, "y_train": y_train, "y_test": y_test,
                "classifier": classifier}

    def _fit(self, champion: Any, split: dict[str, Any]) -> Any:
        spec = package.read_json(self.current, package.PIPELINE_FILE)
        if spec.get("rebuildable") and spec.get("class"):
            candidate, how = package.rebuild_estimator(spec), "rebuilt from pipeline.json"
        else:
            from sklearn.base import clone

            candidate, how = clone(champion), "cloned from the champion"
        package.fault_point("fit")
        started = time.perf_counter()
        candidate.fit(split["X_train"], split["y_train"])
        seconds = time.perf_counter() - started
        self.metrics["fit_s"] = seconds
        self.progress.step("fit", f"{type(candidate).__name__} ({how}) on {len(split['X_train']):,} rows "
                                  f"in {seconds:.2f} s")
        return candidate

    def _primary_metric(self, classifier: bool) -> tuple[str, bool]:
        requirement = self.manifest.get("requirement") or {}
        name = self.settings["metric"] or requirement.get("metric") or ("f1" if classifier else "r2")
        key = metric_key(name)
        family = CLASSIFICATION_METRICS if classifier else REGRESSION_METRICS
        if key is None or key not in family:
            raise PackageError(f"retraining cannot compute the metric {name!r} for a "
                               f"{'classifier' if classifier else 'regressor'}; it computes {', '.join(family)}: set "
                               f"\"metric\" in {self.root / package.SETTINGS_FILE} to one of them")
        if requirement.get("metric") == name and requirement.get("op"):
            higher = requirement["op"] in (">", ">=", "==", "=")
        else:
            higher = key not in LOWER_IS_BETTER
        return key, higher

    def _evaluate(self, candidate: Any, champion: Any, split: dict[str, Any]) -> tuple[dict, dict]:
        classifier = split["classifier"]
        self.metric, self.higher = self._primary_metric(classifier)
        cand = evaluate(candidate, split["X_test"], split["y_test"], classifier=classifier)
        try:
            champ = evaluate(champion, split["X_test"], split["y_test"], classifier=classifier)
        except Exception as exc:  # the champion cannot score the fresh data at all
            champ = {}
            self.tags["champion_error"] = f"{type(exc).__name__}: {exc}"
        self.metrics.update({f"candidate_{k}": v for k, v in cand.items()})
        self.metrics.update({f"champion_{k}": v for k, v in champ.items()})
        self.metrics["holdout_rows"] = len(split["X_test"])
        self.params["metric"] = self.metric
        if self.metric not in cand:
            computed = ", ".join(cand) or "none"
            raise PackageError(f"the candidate cannot be scored on {self.metric} (computed: {computed}); "
                               f"set \"metric\" in settings.json")
        shown = f"{_fmt(champ[self.metric])}" if self.metric in champ else "cannot score"
        self.progress.step("evaluate", f"{self.metric} on {len(split['X_test']):,} held-out rows: candidate "
                                       f"{_fmt(cand[self.metric])}, champion {shown}")
        return cand, champ

    def _decide(self, cand: dict, champ: dict) -> str:
        from mlops_nb.stages import Requirement

        metric, value = self.metric, cand[self.metric]
        requirement = self.manifest.get("requirement")
        gate_note = ""
        if requirement:
            gate = Requirement(requirement["metric"], requirement["op"], float(requirement["threshold"]))
            measured = cand.get(metric_key(requirement["metric"]) or "")
            if measured is None:
                gate_note = f"; requirement {gate.describe()} not checked: its metric cannot be computed here"
                self.tags["gate"] = f"{gate.describe()}: not checked"
            else:
                passed = gate.passes(measured)
                self.tags["gate"] = f"{gate.describe()}: {'passed' if passed else 'failed'} ({_fmt(measured)})"
                if not passed:
                    raise Stop(EXIT_BELOW_REQUIREMENT,
                               f"candidate below the requirement: {requirement['metric']} {_fmt(measured)} does not "
                               f"meet {gate.describe()}; champion version {self.manifest['model']['version']} kept")
        margin = float(self.settings["margin"])
        if metric not in champ:
            reason = f"the champion cannot score the fresh data ({self.tags.get('champion_error', 'no ' + metric)})"
        else:
            gain = (value - champ[metric]) if self.higher else (champ[metric] - value)
            self.metrics["gain"] = gain
            if gain < margin and not self.args.force:
                raise Stop(EXIT_KEPT, f"champion kept: candidate {metric} {_fmt(value)} vs champion "
                                      f"{_fmt(champ[metric])} is a gain of {gain:+.4f}, below the margin {margin:g}")
            reason = (f"candidate {metric} {_fmt(value)} vs champion {_fmt(champ[metric])}: gain {gain:+.4f}"
                      + (f" (below the margin {margin:g}; forced)" if gain < margin else f" >= margin {margin:g}"))
        self.progress.step("decide", f"promote: {reason}{gate_note}")
        return reason

    def _promote(self, candidate: Any, reason: str, table: Any, split: dict[str, Any], data_fp: str) -> Outcome:
        import hashlib

        import skops.io as sio

        from mlops_nb.tracking import registry

        name = self.manifest["model"]["name"]
        model_bytes = sio.dumps(candidate)
        refused = package.untrusted_types(model_bytes)
        if refused:
            raise PackageError(f"the candidate needs types outside mlops-nb's allow-list ({', '.join(refused)}); "
                               f"nothing promoted")
        store = self.store
        with store.transaction():
            artifact = store.add_artifact(self.run_id, f"{name}.skops", store.put_bytes(model_bytes), kind="model")
            version = store.add_model_version(
                name, run_id=self.run_id, artifact_id=artifact, capture_id=None,
                class_path=self.manifest["model"].get("class"),
                description=f"retrained by run {self.run_id} on {self.params.get('data_source')}")
        package.fault_point("record register")
        files = {rel: (self.current / rel).read_bytes() for rel in self.manifest["files"]
                 if not rel.startswith("reference/")}
        files[package.MODEL_FILE] = model_bytes
        inputs = split["X_train"]
        files.update(package.reference_files(table, model=candidate, inputs=inputs))
        files["input_example.json"] = (inputs.head(3).to_json(orient="split", index=False, date_format="iso")
                                       + "\n").encode()
        requirement = self.manifest.get("requirement")
        files["metrics.json"] = (json.dumps(_json_ready({
            "run_id": self.run_id,
            "metrics": {k.removeprefix("candidate_"): v for k, v in self.metrics.items() if k.startswith("candidate_")},
            "champion_metrics": {k.removeprefix("champion_"): v for k, v in self.metrics.items()
                                 if k.startswith("champion_")},
            "holdout_rows": len(split["X_test"]),
            "requirement": requirement,
            "gate": None if not requirement else {
                "metric": requirement["metric"], "op": requirement["op"], "threshold": requirement["threshold"],
                "value": self.metrics.get(f"candidate_{self.metric}"), "passed": 1},
        }), indent=2) + "\n").encode()
        manifest = {k: v for k, v in self.manifest.items() if k not in ("files", "package_version", "resealed")}
        manifest["created"] = datetime.now(timezone.utc).isoformat()
        manifest["model"] = {**self.manifest["model"], "version": version,
                             "sha256": hashlib.sha256(model_bytes).hexdigest()}
        manifest["retrained"] = {
            "run_id": self.run_id, "from_model_version": self.manifest["model"]["version"],
            "from_package_version": package.version_number(self.current), "data_source": self.params.get("data_source"),
            "data_fingerprint": data_fp, "forced": bool(self.args.force), "time": time.time(),
        }
        folder, _ = package.write_version(self.root, files, manifest)
        store.set_tags(self.run_id, {"promoting": str(version)})  # read by the next run if this one dies
        package.switch_current(self.root, folder)
        package.fault_point("record promote")
        registry.promote(name, version, "champion", by="mlops-nb retrain", run=self.run_id, store=store, reason=reason)
        removed = package.prune_versions(self.root, self.settings["keep_versions"])
        kept = ", ".join(p.name for _, p in package.versions(self.root))
        self.progress.step("promote", f"{name} version {version} is champion; current -> {folder.name} "
                                      f"(kept {kept}{f'; removed {len(removed)}' if removed else ''})")
        self.tags["promoted_package"] = folder.name
        return Outcome(EXIT_PROMOTED, f"promoted {name} version {version} (package {folder.name}): {reason} on "
                                      f"{len(split['X_test']):,} held-out rows")

    # -- recording -----------------------------------------------------------------------------------

    def _record(self, outcome: Outcome) -> None:
        if self.store is None or self.run_id is None:
            return
        try:
            duration = time.perf_counter() - self.clock
            self.metrics.update(exit_code=outcome.code, duration_s=duration)
            self.tags.update(decision=outcome.decision, exit_code=str(outcome.code), message=outcome.message[:2000])
            with self.store.transaction():
                self.store.log_params(self.run_id, {k: v for k, v in self.params.items() if v is not None})
                self.store.set_tags(self.run_id, self.tags)
                self.store.log_metrics([(self.run_id, k, 0, float(v)) for k, v in self.metrics.items()
                                        if _number(v)])
                package.fault_point("record end")
                ok = outcome.code in (EXIT_PROMOTED, EXIT_KEPT)
                self.store.end_run(self.run_id, "finished" if ok else "failed", None if ok else outcome.message)
            self.progress.step("record", f"run {self.run_id} ({outcome.decision}, {duration:.1f} s) "
                                         f"in {self.store.path}")
            outcome.metrics = dict(self.metrics)
        except Exception as exc:  # the decision stands; say that it could not be recorded
            self.progress.note(f"mlops-nb retrain: could not record run {self.run_id}: {type(exc).__name__}: {exc}")


def _bound_table(frames: Mapping[str, Any], schema: Mapping[str, Any]) -> Any:
    """The fresh data as one table (the shape the reference profile describes)."""
    import pandas as pd

    binding = (schema.get("data") or {}).get("binding")
    if binding is None:
        raise PackageError("this package records no data stage, so there is no table to check; export it again")
    if binding["mode"] == "frame":
        return frames[binding["frame"]]
    return pd.concat([frames[binding["X"]], frames[binding["y"]].rename(schema["target"])], axis=1)


def _fmt(value: float) -> str:
    return f"{value:.4f}"


def _json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# -- rollback ---------------------------------------------------------------------------------------


@dataclass
class Rollback:
    """What :func:`rollback` did."""

    root: Path
    before: Path | None
    after: Path
    name: str
    model_version: int
    registry: str

    def __str__(self) -> str:
        was = self.before.name if self.before is not None else "nothing"
        return (f"rolled back {self.root}: current {was} -> {self.after.name} ({self.name} version "
                f"{self.model_version}); {self.registry}")


def find_package(name_or_path: str | os.PathLike, *, store: Any = None) -> Path:
    """The package root of a path, or of a model name (its latest export recorded in the store)."""
    path = Path(name_or_path).expanduser()
    if path.exists():
        return package.package_root(path)
    from mlops_nb import store as store_module

    opened = store_module.open_store(store)
    for row in opened.deployments(str(name_or_path)):
        if row["path"] and Path(row["path"]).exists():
            return package.package_root(row["path"])
    raise PackageError(f"{name_or_path} is neither a package folder nor a model exported from {opened.path}; "
                       f"give the package's folder (the --to of the export)")


def rollback(name_or_path: str | os.PathLike, *, to: int | str | None = None, reason: str | None = None,
             store: str | os.PathLike | None = None) -> Rollback:
    """Point ``current`` of a package back at an earlier version, and the registry's ``champion``
    at its model (the one it replaces becomes ``previous``, so a second rollback swaps back).

    ``name_or_path``: the package folder, or a model name whose latest export the store recorded.
    ``to``: a package version (3 or ``"v0003"``); default: the version holding the registry's
    ``previous`` model, else the newest version older than the current one. The target's checksums
    must verify. Takes the package's lock (:class:`~mlops_nb.errors.PackageLocked` while a job runs).
    """
    from mlops_nb import store as store_module
    from mlops_nb.tracking import registry

    root = find_package(name_or_path, store=store)
    with package.locked(root, "rollback"):
        before = package.current_version(root)
        found = package.versions(root)
        if not found:
            raise PackageError(f"{root} has no package versions to roll back to")
        manifests = {number: package.read_manifest(folder) for number, folder in found}
        current_manifest = package.read_manifest(before) if before is not None else manifests[found[-1][0]]
        name = current_manifest["model"]["name"]
        opened = store_module.open_store(store or os.environ.get(store_module.ENV_VAR) or current_manifest.get("store"))
        if to is not None:
            number = int(str(to).lstrip("v"))
            target = dict(found).get(number)
            if target is None:
                raise PackageError(f"{root} has no version {to}; it has {', '.join(p.name for _, p in found)}")
        else:
            target = _rollback_target(found, manifests, before, opened.aliases(name).get("previous"))
        package.verify(target)
        package.switch_current(root, target)
    version = manifests[package.version_number(target)]["model"]["version"]
    if opened.model_version(name, version) is None:
        note = f"the store {opened.path} has no {name} version {version}: registry unchanged"
    else:
        registry.promote(name, version, "champion", by="mlops-nb rollback", store=opened,
                         reason=reason or f"rollback of {root} to {target.name}")
        note = f"{name} version {version} is champion again"
    return Rollback(root, before, target, name, version, note)


def _rollback_target(found: list[tuple[int, Path]], manifests: dict[int, dict], current: Path | None,
                     previous_model: int | None) -> Path:
    current_number = package.version_number(current) if current is not None else None
    others = [(n, p) for n, p in found if n != current_number]
    if previous_model is not None:
        holding = [(n, p) for n, p in others if manifests[n]["model"].get("version") == previous_model]
        if holding:
            return holding[-1][1]
    older = [(n, p) for n, p in others if current_number is None or n < current_number]
    if not older:
        raise PackageError(f"nothing to roll back to: {current} is the oldest version kept "
                           f"({', '.join(p.name for _, p in found)})")
    return older[-1][1]
