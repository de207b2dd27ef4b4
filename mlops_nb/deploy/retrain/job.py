"""The retraining job: what an exported package's ``retrain.py`` and ``mlops-nb retrain`` run.

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
   the store's ``drift`` table. ``settings.json`` ``"on_drift"`` says what drift does: ``hold``
   (default: the candidate waits for a person, exit 81, naming the drifted columns; ``--force``
   goes on), ``retrain`` (recorded, the job goes on), ``retrain_on_drift`` (retrain only when drift
   is found, else 99). The ``drift`` key of older packages is read as before.
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
run finishes an alias move the killed one had started. Every store write is in
:mod:`mlops_nb.deploy.retrain.records`.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_nb.capture import class_path
from mlops_nb.deploy.exits import (
    EXIT_BELOW_REQUIREMENT,
    EXIT_BUG,
    EXIT_DRIFT,
    EXIT_KEPT,
    EXIT_LOCKED,
    EXIT_PROMOTED,
    Stop,
    decision,
    stop_for,
)
from mlops_nb.deploy.layout import (
    CURRENT,
    PIPELINE_FILE,
    PROFILE_FILE,
    SCRIPT_FILE,
    SETTINGS_FILE,
    current_version,
    lock_path,
    locked,
    package_root,
    prune_versions,
    read_json,
    switch_current,
    version_number,
    versions,
    write_version,
)
from mlops_nb.deploy.metrics import CLASSIFICATION_METRICS, LOWER_IS_BETTER, REGRESSION_METRICS, evaluate, metric_key
from mlops_nb.deploy.model import load_model, rebuild_estimator, untrusted_types
from mlops_nb.deploy.reference import model_scores, read_reference
from mlops_nb.deploy.retrain import records
from mlops_nb.deploy.retrain.fresh_data import prepare_inputs, read_fresh
from mlops_nb.deploy.retrain.new_version import version_files, version_manifest
from mlops_nb.deploy.retrain.progress import Progress, last_line
from mlops_nb.deploy.schema import allow_missing, imputes, read_schema
from mlops_nb.deploy.script.load import load_script
from mlops_nb.deploy.settings import read_settings
from mlops_nb.deploy.skops_scan import import_skops_io
from mlops_nb.deploy.sources import describe_source
from mlops_nb.deploy.verify import read_manifest, verify, version_mismatches
from mlops_nb.errors import ChecksumError, PackageError, PackageLocked, SchemaMismatch


@dataclass
class Outcome:
    """How a retraining run ended: exit ``code``, the one-line ``message``, and what it recorded."""

    code: int
    message: str
    run_id: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def decision(self) -> str:
        return decision(self.code)


def run_package(
    package_dir: str | os.PathLike,
    *,
    data: str | None = None,
    query: str | None = None,
    force: bool = False,
    prepare: Callable[[dict[str, Any]], tuple[Any, Any]] | None = None,
    notebook_data: Callable[[], dict[str, Any]] | None = None,
    store: str | os.PathLike | None = None,
    out: Any = None,
    public_key: str | os.PathLike | None = None,
) -> int:
    """Run one retraining job on the package at ``package_dir`` (its root, ``current``, a version
    folder or its retrain.py) and return the exit status (:mod:`mlops_nb.deploy.exits`).

    ``data``: a file path or glob, or a database URL read with ``query`` (default: the source given
    at export, else the notebook's own data step). ``force``: promote a candidate that passes the
    requirement even if it does not beat the champion by the margin, and go on despite drift that
    would block. ``prepare`` and ``notebook_data``: retrain.py's functions (default: loaded from the
    current version's retrain.py once it is verified). ``store``: the store to record in (default
    ``$MLOPS_NB_STORE``, else the store the package was exported from). ``out``: where the log lines
    go (default standard output). ``public_key``: the public key the package must be signed by.
    """
    job = Job(Path(package_dir), data=data, query=query, force=force, prepare=prepare, notebook_data=notebook_data,
              store=store, out=out or sys.stdout)
    job.public_key = public_key
    return job.run().code


class Job:
    """One retraining run of one package; :meth:`run` does everything and never raises."""

    def __init__(self, path: Path, *, data: str | None = None, query: str | None = None, force: bool = False,
                 prepare: Callable | None = None, notebook_data: Callable | None = None,
                 store: str | os.PathLike | None = None, out: Any = None):
        self.path = path
        self.data, self.query, self.force = data, query, force
        self.prepare = prepare
        self.notebook_data = notebook_data
        self.explicit_store = store
        self.public_key: str | os.PathLike | None = None  # the pinned key (else $MLOPS_NB_PUBLIC_KEY)
        self.progress = Progress(out or sys.stdout)
        self.root: Path | None = None
        self.current: Path | None = None
        self.manifest: dict[str, Any] = {}
        self.store = None
        self.run_id: int | None = None
        self.params: dict[str, Any] = {"forced": bool(force)}
        self.tags: dict[str, Any] = {}
        self.metrics: dict[str, float] = {}
        self.gate_passed: bool | None = None  # the candidate's requirement, once checked
        self.gate: dict[str, Any] | None = None  # that verdict, recorded with the run
        self.started = time.time()
        self.clock = time.perf_counter()

    # -- the whole run ---------------------------------------------------------------------------

    def run(self) -> Outcome:
        self.progress.name = self.path.name
        try:
            try:
                self.root = package_root(self.path)
                self.progress.name = self.root.name
                with locked(self.root, "retraining"):
                    self.progress.step("lock", f"holding {lock_path(self.root)}")
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
        self.progress.note(last_line(self.progress.name, outcome.code, outcome.message))
        return outcome

    def _start_run_quietly(self) -> None:
        with contextlib.suppress(Exception):
            self.current = current_version(self.root)
            self.manifest = read_manifest(self.current)
            self.progress.name = self.manifest["model"]["name"]
            self._start_run()

    def _failure(self, exc: BaseException) -> Outcome:
        stop = stop_for(exc)
        if stop is not None:
            return Outcome(stop.code, stop.message)
        self.progress.close()
        self.progress.note("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip())
        return Outcome(EXIT_BUG, f"bug: {type(exc).__name__}: {exc} (traceback above; please report it)")

    def _locked(self) -> Outcome:
        root = self.root
        self.current = current_version(root)
        if self.current is None:
            raise ChecksumError(f"{root / CURRENT} points at no complete version; "
                                f"run `mlops-nb rollback {root}` to point it at the newest good one")
        self.manifest = read_manifest(self.current)
        self.progress.name = self.manifest["model"]["name"]
        self._start_run()
        self._check_package()
        table, frames, fingerprint = self._load()
        X, y = self._prepare(frames)
        champion = load_model(self.current, verify_files=False)
        self._drift(table, champion, X)
        split = self._split(champion, X, y)
        candidate = self._fit(champion, split)
        cand, champ = self._evaluate(candidate, champion, split)
        decision = self._decide(cand, champ)
        return self._promote(candidate, decision, table, split, fingerprint)

    # -- steps -------------------------------------------------------------------------------------

    def _start_run(self) -> None:
        self.store = records.open_job_store(self.explicit_store, self.manifest)
        self.run_id = records.start_run(self.store, self.manifest)
        self.params.update(package=str(self.root), model=self.manifest["model"]["name"],
                           champion_version=self.manifest["model"]["version"], champion_package=self.current.name)

    def _check_package(self) -> None:
        manifest = verify(self.current, store=self.store, public_key=self.public_key)
        mismatches = version_mismatches(self.current)
        if mismatches:
            raise PackageError(f"installed libraries differ from the package's pins: {'; '.join(mismatches)}. "
                               f"Install them (pip install -r {self.current / 'requirements.txt'}) or export again")
        self.settings = read_settings(self.root)
        self.params.update(drift_action=self.settings["on_drift"], margin=self.settings["margin"],
                           holdout=self.settings["holdout"], seed=self.settings["seed"])
        note = records.finish_interrupted_promotion(self.store, self.root, self.manifest, self.run_id)
        if note:
            self.progress.note(note)
        if self.prepare is None:
            try:
                script = load_script(self.current, verified=True)
            except Exception as exc:
                raise PackageError(f"{self.current / SCRIPT_FILE} does not load: "
                                   f"{type(exc).__name__}: {exc}") from None
            self.prepare, self.notebook_data = script.prepare, getattr(script, "notebook_data", None)
        number = version_number(self.current)
        self.progress.step("package", f"{self.manifest['model']['name']} version {manifest['model']['version']} "
                                      f"(package v{number or 0:04d}): {len(manifest['files'])} files verified, "
                                      f"library versions match; run {self.run_id} in {self.store.path}")

    def _load(self) -> tuple[Any, dict[str, Any], str]:
        source = self.data or self.manifest.get("data_source")
        if source:  # recorded even when the source then turns out to be empty or wrong
            self.params["data_source"] = describe_source(source)
        fresh = read_fresh(self._schema(), source=source,
                           query=self.query or self.settings["query"], notebook_data=self.notebook_data,
                           min_rows=self.settings["min_rows"], step=self.progress.step)
        self.params["data_source"] = fresh.source
        self.tags["data_fingerprint"] = fresh.fingerprint
        self.metrics["rows"] = len(fresh.table)
        self.progress.step("validate", f"matches schema.json ({fresh.table.shape[1]} columns), "
                                       f"fingerprint {fresh.fingerprint[:12]}")
        return fresh.table, fresh.frames, fresh.fingerprint

    def _schema(self) -> dict[str, Any]:
        """schema.json, with missing values accepted up to ``max_missing`` in columns the pipeline imputes."""
        return allow_missing(read_schema(self.current), float(self.settings["max_missing"]),
                             imputes(read_json(self.current, PIPELINE_FILE)))

    def _prepare(self, frames: dict[str, Any]) -> tuple[Any, Any]:
        # copies: a features cell that adds a column to its frame must not change the table the
        # new version's drift reference is taken from (the data stage's output, as at export)
        X, y = prepare_inputs(self.prepare, {k: v.copy() for k, v in frames.items()}, self._schema())
        self.progress.step("prepare", f"X {X.shape[0]:,} rows x {X.shape[1]} columns, y {len(y):,} rows")
        return X, y

    def _drift(self, table: Any, champion: Any, X: Any) -> None:
        from mlops_nb import drift

        profile = read_json(self.current, PROFILE_FILE)
        config = {**drift.DEFAULT_CONFIG, **self.settings["drift_config"]}
        small = int(profile.get("n_rows", 0)) <= config["small_sample"]
        sample = read_reference(self.current, with_sample=True)[1] if small else None
        report = drift.dataset_drift(profile, table, sample=sample, config=config)
        prediction = None
        if profile.get("scores"):
            scored = model_scores(champion, X)
            if scored is not None:
                prediction = drift.prediction_drift(profile["scores"], scored[1], config=config)
        dataset = report.to_dict()  # once: its columns are the rows and the document's "dataset"
        predicted = prediction.to_dict() if prediction is not None else None
        rows = [*dataset["columns"], *([{**predicted, "kind": "prediction"}] if predicted else [])]
        records.record_drift(self.store, self.run_id, rows, {"dataset": dataset, "prediction": predicted})
        self.metrics["drift_share"] = report.share
        if prediction is not None and prediction.value is not None:
            self.metrics["prediction_psi"] = float(prediction.value)
        drifted = report.dataset_drift or (prediction is not None and prediction.verdict == "drift")
        self.tags["dataset_drift"] = str(report.dataset_drift).lower()
        summary = report.summary()
        if prediction is not None:
            summary += f"; prediction {prediction.verdict} (PSI {prediction.value or 0:.3f})"
        action = self.settings["on_drift"]
        self.progress.step("drift", f"{summary}; on drift: {action}")
        if drifted and action == "hold" and not self.force:
            named = [c.column for c in report.columns if c.verdict == "drift"]
            shown = ", ".join(named[:10]) + (f" and {len(named) - 10} more" if len(named) > 10 else "")
            columns = f"drifted columns: {shown}; " if named else ""
            raise Stop(EXIT_DRIFT, f"drift needs a person: {summary}; {columns}candidate held. settings.json says "
                                   f"\"on_drift\": \"hold\": look at the drift rows of run {self.run_id}, then run "
                                   f"`mlops-nb retrain {self.root} --force` to retrain anyway (or set \"on_drift\": "
                                   f"\"retrain\")")
        if not drifted and action == "retrain_on_drift" and not self.force:
            raise Stop(EXIT_KEPT, f"champion kept: no drift found ({summary}) and settings.json says \"on_drift\": "
                                  f"\"retrain_on_drift\" (retrain only on drift); --force retrains anyway")

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
        spec = read_json(self.current, PIPELINE_FILE)
        if spec.get("rebuildable") and spec.get("class"):
            candidate, how = rebuild_estimator(spec), "rebuilt from pipeline.json"
        else:
            from sklearn.base import clone

            candidate, how = clone(champion), "cloned from the champion"
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
                               f"\"metric\" in {self.root / SETTINGS_FILE} to one of them")
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
                self.gate_passed = bool(passed)
                self.gate = {"metric": gate.metric, "op": gate.op, "threshold": gate.threshold,
                             "value": float(measured), "passed": int(passed)}
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
            if gain < margin and not self.force:
                raise Stop(EXIT_KEPT, f"champion kept: candidate {metric} {_fmt(value)} vs champion "
                                      f"{_fmt(champ[metric])} is a gain of {gain:+.4f}, below the margin {margin:g}")
            reason = (f"candidate {metric} {_fmt(value)} vs champion {_fmt(champ[metric])}: gain {gain:+.4f}"
                      + (f" (below the margin {margin:g}; forced)" if gain < margin else f" >= margin {margin:g}"))
        self.progress.step("decide", f"promote: {reason}{gate_note}")
        return reason

    def _promote(self, candidate: Any, reason: str, table: Any, split: dict[str, Any], data_fp: str) -> Outcome:
        sio = import_skops_io()  # imported already, with the package's record, when the champion loaded
        name = self.manifest["model"]["name"]
        model_bytes = sio.dumps(candidate)
        refused = untrusted_types(model_bytes)
        if refused:
            raise PackageError(f"the candidate needs types outside mlops-nb's allow-list ({', '.join(refused)}); "
                               f"nothing promoted")
        # One recoverable step: the version is registered already marked "promoting"; a job killed
        # anywhere from here to the alias move is completed (current serves it) or undone (it does
        # not) by the next job, under the same lock (records.finish_interrupted_promotion).
        version = records.register_candidate(
            self.store, self.run_id, name, model_bytes, class_path=class_path(candidate),
            description=f"retrained by run {self.run_id} on {self.params.get('data_source')}",
            gate_passed=self.gate_passed)
        files = version_files(self.current, self.manifest, model_bytes, candidate=candidate, table=table,
                              inputs=split["X_train"], run_id=self.run_id, metrics=self.metrics,
                              holdout_rows=len(split["X_test"]), primary_metric=self.metric)
        manifest = version_manifest(self.current, self.manifest, model_bytes, version=version, run_id=self.run_id,
                                    data_source=self.params.get("data_source"), data_fingerprint=data_fp,
                                    forced=bool(self.force))
        folder, _ = write_version(self.root, files, manifest)
        records.seal_version(self.store, folder, self.root, self.run_id)
        switch_current(self.root, folder)
        records.promote_champion(self.store, name, version, self.run_id, reason)
        removed = prune_versions(self.root, self.settings["keep_versions"])
        kept = ", ".join(p.name for _, p in versions(self.root))
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
            ok = outcome.code in (EXIT_PROMOTED, EXIT_KEPT)
            records.record_end(self.store, self.run_id, params=self.params, tags=self.tags, metrics=self.metrics,
                               ok=ok, message=outcome.message, requirement=self.manifest.get("requirement"),
                               gate=self.gate)
            self.progress.step("record", f"run {self.run_id} ({outcome.decision}, {duration:.1f} s) "
                                         f"in {self.store.path}")
            outcome.metrics = dict(self.metrics)
        except Exception as exc:  # the decision stands; say that it could not be recorded
            self.progress.note(f"mlops-nb retrain: could not record run {self.run_id}: {type(exc).__name__}: {exc}")
            return
        # The store's mlflow_uri setting: push this run; a down server costs one line, never the job.
        from mlops_nb.sync.auto import push_after

        push_after(self.store, self.run_id)


def _fmt(value: float) -> str:
    return f"{value:.4f}"

