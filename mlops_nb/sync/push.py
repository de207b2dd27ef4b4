"""Push what is new in the store to an MLflow tracking server, and remember what was pushed.

Order and bookkeeping make a sync safe to kill at any moment and to run again:

- A run is recorded (``sync_runs`` row, no MLflow id yet) *before* MLflow creates it, with the tag
  ``mlops_nb.run_uid``; a row without an id means a creation may have happened, so the next sync
  looks the run up by that tag before creating one.
- Metrics go in the order they were logged, a batch at a time within MLflow's log_batch limits (a
  new run's params and tags in its first batch). The last row a run has to push is recorded as *in
  flight* (with the run's MLflow id, in one write) before its first batch is sent, and as
  *acknowledged* (with the rest of the run's state, in one write) once the run is pushed; values
  found in flight on resume are checked against the server's history (MLflow keeps each key's values
  in order and the batches went in that order), so the values it already holds are not sent twice.
  So a new run costs three local writes and as many requests as MLflow's own client logging it.
- A run's ``environment.json`` is uploaded once per content per server; each run's
  ``mlops_nb.environment`` tag names the run that holds it.
- Params and tags are idempotent in MLflow (the same value again is accepted); a param whose value
  changed locally after it was pushed (MLflow refuses a change) goes to a ``mlops_nb.param_changed.*`` tag.
- Artifacts, model versions and aliases are recorded once pushed; model versions carry the tags
  ``mlops_nb.store`` and ``mlops_nb.version`` so a version created just before a kill is found again.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_nb.errors import SyncError
from mlops_nb.store import Store, open_store
from mlops_nb.sync import content
from mlops_nb.sync.client import (
    MANUAL_TIMEOUTS,
    MAX_ENTITIES_PER_BATCH,
    MAX_METRICS_PER_BATCH,
    MAX_PARAMS_TAGS_PER_BATCH,
    error_code,
    mlflow_client,
    timeouts,
    translate,
)
from mlops_nb.tracking import sync_state
from mlops_nb.tracking.views import run_view


@dataclass
class Summary:
    """What a sync did (or, with ``dry_run``, would do)."""

    target: str
    runs_created: int = 0
    runs_updated: int = 0
    metric_values: int = 0
    artifacts: int = 0
    model_versions: int = 0
    aliases: int = 0
    dry_run: bool = False
    pending: list[str] = field(default_factory=list)

    @property
    def nothing(self) -> bool:
        return not (self.runs_created or self.runs_updated or self.metric_values or self.artifacts
                    or self.model_versions or self.aliases or self.pending)

    def line(self) -> str:
        """One line for the CLI and the magic."""
        if self.dry_run:
            if not self.pending:
                return f"mlops: nothing to push to {self.target}"
            return f"mlops: would push to {self.target}: " + "; ".join(self.pending)
        if self.nothing:
            return f"mlops: {self.target} is up to date; nothing to push"
        return (f"mlops: pushed to {self.target}: {self.runs_created} new run(s), {self.runs_updated} updated, "
                f"{self.metric_values} metric value(s), {self.artifacts} artifact file(s), "
                f"{self.model_versions} model version(s), {self.aliases} alias(es)")


def sync_mlflow(
    tracking_uri: str, *, store: str | Store | None = None, projects: list[str] | None = None,
    since: int | None = None, dry_run: bool = False, progress: bool | None = None,
    http_timeouts: dict[str, str] | None = None,
) -> Summary:
    """Push the store's runs (of ``projects``, from run ``since`` on) and its model registry to the
    MLflow tracking server at ``tracking_uri``; only what is new since the last sync to that server.

    ``progress``: a progress bar on stderr (default: when stderr is a terminal). Raises
    :class:`~mlops_nb.errors.ServerUnreachable`, :class:`~mlops_nb.errors.SyncAuthRefused` or
    :class:`~mlops_nb.errors.SyncError`; whatever was acknowledged before is recorded and kept.
    """
    if not isinstance(tracking_uri, str) or not tracking_uri.strip():
        raise SyncError("no MLflow tracking URI given; pass --tracking-uri http://HOST:5000 "
                        "(or set MLFLOW_TRACKING_URI)")
    opened = store if isinstance(store, Store) else open_store(store)
    pusher = _Pusher(opened, tracking_uri.strip().rstrip("/"), projects=projects, since=since)
    work = pusher.plan()
    if dry_run:
        pusher.summary.dry_run = True
        return pusher.summary
    if not work and not pusher.registry_work:
        return pusher.summary
    with timeouts(http_timeouts or MANUAL_TIMEOUTS):
        pusher.push(work, progress=sys.stderr.isatty() if progress is None else progress)
    return pusher.summary


@dataclass
class _Work:
    run: dict[str, Any]
    record: dict[str, Any] | None
    params: dict[str, Any]
    tags: dict[str, Any]
    digest: str
    state: str


class _Pusher:
    def __init__(self, store: Store, target: str, *, projects: list[str] | None, since: int | None):
        self.store = store
        self.target = target
        self.projects = projects
        self.since = since
        self.summary = Summary(target)
        self.uuid = store.setting("store_uuid") or "unknown"
        self.client: Any = None
        self.experiments = store.sync_items(target, "experiment")
        # Read once per sync, kept up to date as it pushes: a per-run query would grow with the store.
        self.artifacts = store.sync_items(target, "artifact")
        self.environments = store.sync_items(target, "environment")
        self.artifact_uris: dict[str, str] = {}
        self.remote_ids: dict[int, str] = {}
        self.registry_work: list[tuple[str, Any]] = []
        self.selected: set[int] = set()

    # -- deciding what is new, from the store alone ----------------------------------------------------

    def plan(self) -> list[_Work]:
        runs = self.store.runs_to_sync(self.projects, self.since)
        self.selected = {r["id"] for r in runs}
        records = self.store.sync_runs(self.target)
        self.remote_ids = {rid: r["remote_id"] for rid, r in records.items() if r["remote_id"]}
        values = self.store.all_params_tags([r["id"] for r in runs])
        digests = self.store.lifecycle_digest([r["id"] for r in runs])
        work, new, metric_values = [], 0, 0
        for run in runs:
            record = records.get(run["id"])
            params, tags = values[run["id"]]
            state = _hash([run["name"], run["status"], run["end_time"], run["error"], tags, digests[run["id"]]])
            pending_metrics = (run["max_rowid"] or 0) - (record["metric_rowid"] if record else 0)
            params_json = json.dumps(params, sort_keys=True, default=str)
            fresh = record is None or record["remote_id"] is None
            if fresh or pending_metrics > 0 or record["inflight_rowid"] is not None \
                    or record["state"] != state or record["params"] != params_json:
                work.append(_Work(run, record, params, tags, params_json, state))
                new += fresh
                metric_values += max(pending_metrics, 0)
        self._plan_registry()
        if work:
            self.summary.pending.append(f"{new} new run(s), {len(work) - new} changed, "
                                        f"up to {metric_values} metric value(s)")
        if self.registry_work:
            self.summary.pending.append(f"{len(self.registry_work)} registry change(s)")
        return work

    def _plan_registry(self) -> None:
        versions = self.store.sync_items(self.target, "model_version")
        aliases = self.store.sync_items(self.target, "alias")
        for mv in self.store.model_versions():
            if (self.projects or self.since) and mv["run_id"] not in self.selected:
                continue
            if f"{mv['name']}/{mv['version']}" not in versions:
                self.registry_work.append(("version", mv))
        names = {mv["name"] for mv in self.store.model_versions()}
        for name in sorted(names):
            local = self.store.aliases(name)
            for alias, version in local.items():
                if aliases.get(f"{name}/{alias}") != str(version):
                    self.registry_work.append(("alias", (name, alias, version)))
            for key in aliases:
                model, _, alias = key.partition("/")
                if model == name and alias not in local:
                    self.registry_work.append(("unalias", (name, alias)))

    # -- pushing -----------------------------------------------------------------------------------------

    def push(self, work: list[_Work], *, progress: bool) -> None:
        self.client = mlflow_client(self.target)
        from tqdm.auto import tqdm

        with tqdm(total=len(work), desc="mlops-nb sync", unit="run", disable=not progress, file=sys.stderr,
                  leave=False) as bar:
            for item in work:
                self._push_run(item)
                bar.update(1)
        if self.registry_work:
            self._push_registry()

    def _call(self, what: str, fn: Any, *args: Any, owned: str | None = None, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)``, its failure said as a SyncError; ``owned`` names what a refused
        permission is about (an experiment or model of another user)."""
        try:
            return fn(*args, **kwargs)
        except SyncError:
            raise
        except Exception as exc:
            meanwhile = ""
            if owned and owned.startswith("experiment"):
                meanwhile = " (meanwhile, sync the other projects: mlops-nb sync mlflow --project P)"
            raise translate(exc, self.target, what, owned=owned, meanwhile=meanwhile) from None

    def _experiment(self, project: str) -> str:
        if project in self.experiments:
            return self.experiments[project]
        what = f"finding experiment '{project}'"
        owned = f"experiment '{project}'"
        found = self._call(what, self.client.get_experiment_by_name, project, owned=owned)
        if found is None:
            try:
                experiment_id = self.client.create_experiment(project, tags={"mlops_nb.created_by": "mlops-nb"})
            except Exception as exc:
                if error_code(exc) != "RESOURCE_ALREADY_EXISTS":
                    raise translate(exc, self.target, f"creating experiment '{project}'") from None
                found = self._call(what, self.client.get_experiment_by_name, project, owned=owned)
                experiment_id = found.experiment_id
        elif found.lifecycle_stage == "deleted":
            raise SyncError(
                f"the experiment '{project}' on {self.target} was deleted (id {found.experiment_id}); restore it "
                f"(mlflow experiments restore --experiment-id {found.experiment_id}) or delete it for good, "
                f"then sync again")
        else:
            experiment_id = found.experiment_id
        sync_state.record_item(self.store, self.target, "experiment", project, experiment_id)
        self.experiments[project] = experiment_id
        return experiment_id

    def _push_run(self, item: _Work) -> None:
        """One run in at most three bookkeeping writes: the intent to create it (a new run only), its
        MLflow id with the whole of its pending metrics in flight, then all of it acknowledged once
        MLflow holds the values, the tags, the files and the status."""
        run, record = item.run, item.record
        label = f"run {run['id']} ({run['name']}) of '{run['project']}'"
        experiment_id = self._experiment(run["project"])
        tags = content.base_tags(run, self.store, self.uuid)
        remote = record["remote_id"] if record else None
        new_remote = None
        if remote is None:
            remote = new_remote = self._create_run(run, experiment_id, tags, looked_up=record is not None,
                                                   label=label)
            self.summary.runs_created += 1
            record = {"metric_rowid": 0, "inflight_rowid": None, "params": None, "state": None}
        else:
            self.summary.runs_updated += 1
        self.remote_ids[run["id"]] = remote
        rest_changed = record["state"] != item.state or record["params"] != item.digest
        first_params, first_tags, environment = {}, {}, None
        if rest_changed:
            view = run_view(self.store, run["id"])
            all_tags = {**item.tags, **tags, **content.lifecycle_tags(view)}
            if run.get("parent_id") is not None and run["parent_id"] in self.remote_ids:
                all_tags["mlflow.parentRunId"] = self.remote_ids[run["parent_id"]]
            environment = self._environment(view, remote, all_tags)
            params, notes = content.fit_params(self._new_params(item.params, record["params"], all_tags))
            first_tags = content.fit_tags({**all_tags, **notes})
            first_params = params
        upto = self._push_metrics(run, remote, record, first_params, first_tags, label, new_remote=new_remote)
        done: dict[str, Any] = {"metric_rowid": upto, "inflight_rowid": None} if upto is not None else {}
        try:
            if rest_changed:
                self._push_files(run, remote, view, environment, label)
                if run["status"] == "running":  # a resumed run (kernel restart) runs again
                    self._call(f"updating {label}", self.client.update_run, remote, status="RUNNING",
                               name=run["name"])
                else:
                    self._call(f"ending {label}", self.client.set_terminated, remote,
                               status=content.STATUS[run["status"]], end_time=content.ms(run["end_time"]))
                done.update(state=item.state, params=item.digest)
        finally:  # the metric values MLflow acknowledged stay recorded even when a later call failed
            if done:
                sync_state.record_run(self.store, self.target, run["id"], **done)

    def _create_run(self, run: dict[str, Any], experiment_id: str, tags: dict[str, str], *, looked_up: bool,
                    label: str) -> str:
        """The run's MLflow id: found by its tag after a killed creation, else created. Its id is
        recorded by the caller, together with the metrics it puts in flight."""
        owned = f"experiment '{run['project']}' (id {experiment_id})"
        if looked_up:  # a creation may have happened before a kill: find it by its tag
            uid = tags[content.UID_TAG]
            found = self._call(f"looking up {label}", self.client.search_runs, [experiment_id],
                               filter_string=f"tags.`{content.UID_TAG}` = '{uid}'", run_view_type=3, max_results=1,
                               owned=owned)
            if found:
                return found[0].info.run_id
        else:
            sync_state.record_run(self.store, self.target, run["id"])  # intent first, then the creation
        created = self._call(f"creating {label}", self.client.create_run, experiment_id,
                             start_time=content.ms(run["start_time"]), tags=content.fit_tags(tags),
                             run_name=run["name"], owned=owned)
        self.artifact_uris[created.info.run_id] = created.info.artifact_uri
        return created.info.run_id

    def _new_params(self, params: dict[str, Any], pushed_json: str | None, tags: dict[str, Any]) -> dict[str, Any]:
        """Params not yet pushed; a changed value (MLflow refuses changing a param) goes to a tag."""
        pushed = json.loads(pushed_json) if pushed_json else {}
        new = {}
        for key, value in params.items():
            if key not in pushed:
                new[key] = value
            elif pushed[key] != json.loads(json.dumps(value, default=str)):
                tags[f"mlops_nb.param_changed.{key}"] = content.param_text(value)
        return new

    def _environment(self, view: dict[str, Any], remote: str, tags: dict[str, Any]) -> tuple[str, str] | None:
        """The run's ``environment.json`` is uploaded once per content per server: every run gets the
        tag ``mlops_nb.environment`` naming the run that holds it. Returns ``(sha256, text)`` when this
        run is to hold it (no run on the server has it yet), else None."""
        text = content.environment_text(view)
        if text is None:
            return None
        sha = hashlib.sha256(text.encode()).hexdigest()
        holder = self.environments.get(sha)
        tags[content.ENVIRONMENT_TAG] = holder or f"runs:/{remote}/mlops-nb/{content.ENVIRONMENT_FILE}"
        return None if holder else (sha, text)

    def _push_metrics(self, run: dict[str, Any], remote: str, record: dict[str, Any], params: dict[str, str],
                      tags: dict[str, str], label: str, *, new_remote: str | None) -> int | None:
        """The run's metric rows logged up to the plan (with its new params and tags in the first
        batch), the whole range recorded in flight before the first batch; the last rowid sent, or
        None when there were none. ``new_remote``: an MLflow id to record with them."""
        from mlflow.entities import Metric, Param, RunTag

        after = record["metric_rowid"] or 0
        upto = run["max_rowid"] or 0
        skip: dict[str, int] = {}
        if record.get("inflight_rowid") is not None:
            skip = self._already_there(run["id"], remote, after, record["inflight_rowid"], label)
        pending = upto > after
        if pending or new_remote:
            marks: dict[str, Any] = {"remote_id": new_remote} if new_remote else {}
            if pending and record.get("inflight_rowid") != upto:
                marks["inflight_rowid"] = upto  # one marker for all the batches: resume checks them all
            if marks:
                sync_state.record_run(self.store, self.target, run["id"], **marks)
        param_items = [Param(k, v) for k, v in params.items()]
        tag_items = [RunTag(k, v) for k, v in tags.items()]
        while True:
            p_now, param_items = param_items[:MAX_PARAMS_TAGS_PER_BATCH], param_items[MAX_PARAMS_TAGS_PER_BATCH:]
            t_now, tag_items = tag_items[:MAX_PARAMS_TAGS_PER_BATCH], tag_items[MAX_PARAMS_TAGS_PER_BATCH:]
            room = min(MAX_METRICS_PER_BATCH, MAX_ENTITIES_PER_BATCH - len(p_now) - len(t_now))
            rows = self.store.metric_rows(run["id"], after, room, upto=upto) if room > 0 and after < upto else []
            metrics = []
            for _rowid, key, step, value, at in rows:
                if skip.get(key):
                    skip[key] -= 1
                    continue
                metrics.append(Metric(key, float("nan") if value is None else value, content.ms(at), step))
            if not (p_now or t_now or rows):
                return upto if pending else None
            if metrics or p_now or t_now:
                self._call(f"logging metrics, params and tags of {label}", self.client.log_batch, remote,
                           metrics=metrics, params=p_now, tags=t_now, synchronous=True)
            self.summary.metric_values += len(metrics)
            after = rows[-1][0] if rows else after

    def _already_there(self, run_id: int, remote: str, after: int, inflight: int, label: str) -> dict[str, int]:
        """How many of the in-flight values, per key, the server already holds: MLflow keeps a key's
        values in the order they were logged and the batches went in that order, so they are the
        first ones of that key."""
        rows = self.store.metric_rows(run_id, after, max(inflight - after, 0), upto=inflight)
        keys = {row[1] for row in rows}
        skip = {}
        for key in keys:
            on_server = len(self._call(f"reading the history of metric '{key}' of {label}",
                                       self.client.get_metric_history, remote, key))
            acknowledged = self.store.conn.execute(
                "SELECT count(*) FROM metrics WHERE run_id = ? AND key = ? AND rowid <= ?",
                (run_id, key, after)).fetchone()[0]
            skip[key] = max(on_server - acknowledged, 0)
        return skip

    def _artifact_repo(self, remote: str) -> Any:
        """Where the run's files go: from the artifact URI create_run answered, when this sync created
        the run (MLflow's own log_artifacts would ask the server for it again), else through the client."""
        uri = self.artifact_uris.get(remote)
        if uri is None:
            return None
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        return get_artifact_repository(uri, tracking_uri=self.target)

    def _upload(self, what: str, remote: str, local: str, remote_dir: str, *, folder: bool) -> None:
        repo = self._artifact_repo(remote)
        if repo is not None:
            upload = repo.log_artifacts if folder else repo.log_artifact
            self._call(what, upload, local, remote_dir)
        else:
            upload = self.client.log_artifacts if folder else self.client.log_artifact
            self._call(what, upload, remote, local, remote_dir)

    def _push_files(self, run: dict[str, Any], remote: str, view: dict[str, Any],
                    environment: tuple[str, str] | None, label: str) -> None:
        """The run's ``mlops-nb/`` files (regenerated, so a stage re-run replaces them), its
        environment when no run on the server holds the same one yet, and each of its
        content-addressed artifacts, uploaded once."""
        with tempfile.TemporaryDirectory(prefix="mlops-nb-sync-") as tmp:
            folder = Path(tmp)
            count = content.write_lifecycle_files(self.store, view, folder)
            if environment is not None:
                (folder / content.ENVIRONMENT_FILE).write_text(environment[1])
                count += 1
            if count:
                self._upload(f"uploading the mlops-nb/ files of {label}", remote, tmp, "mlops-nb", folder=True)
                self.summary.artifacts += count
        if environment is not None:
            where = f"runs:/{remote}/mlops-nb/{content.ENVIRONMENT_FILE}"
            sync_state.record_item(self.store, self.target, "environment", environment[0], where)
            self.environments[environment[0]] = where
        for artifact in self.store.rows("SELECT * FROM artifacts WHERE run_id = ? ORDER BY id", (run["id"],)):
            key = f"{run['id']}:{artifact['sha256']}"
            if key in self.artifacts:
                continue
            path = self.store.artifact_path(artifact["path"])
            if not path.is_file():
                print(f"mlops: artifact {artifact['name']} of {label} is missing from {path}; not uploaded",
                      file=sys.stderr)
                continue
            remote_dir = f"mlops-nb/artifacts/{artifact['sha256'][:16]}"
            with tempfile.TemporaryDirectory(prefix="mlops-nb-sync-") as tmp:
                named = Path(tmp) / _safe_name(artifact["name"])
                named.symlink_to(path.resolve())
                self._upload(f"uploading artifact {artifact['name']} of {label}", remote, str(named), remote_dir,
                             folder=False)
            self._record_artifact(key, f"{remote_dir}/{named.name}")
            self.summary.artifacts += 1

    def _record_artifact(self, key: str, path: str) -> None:
        sync_state.record_item(self.store, self.target, "artifact", key, path)
        self.artifacts[key] = path

    # -- the model registry ------------------------------------------------------------------------------

    def _push_registry(self) -> None:
        if self.client is None:
            self.client = mlflow_client(self.target)
        remote_versions: dict[str, dict[str, str]] = {}
        for kind, item in self.registry_work:
            if kind == "version":
                self._push_version(item, remote_versions)
        pushed = self.store.sync_items(self.target, "model_version")
        for kind, item in self.registry_work:
            if kind == "alias":
                name, alias, version = item
                remote = pushed.get(f"{name}/{version}")
                if remote is None:
                    continue  # its version was not pushed (another project); said by the next sync
                self._call(f"setting alias {alias} of model {name}", self.client.set_registered_model_alias,
                           name, alias, remote, owned=f"model '{name}'")
                sync_state.record_item(self.store, self.target, "alias", f"{name}/{alias}", str(version))
                self.summary.aliases += 1
            elif kind == "unalias":
                name, alias = item
                try:
                    self.client.delete_registered_model_alias(name, alias)
                except Exception as exc:
                    if error_code(exc) != "RESOURCE_DOES_NOT_EXIST":
                        raise translate(exc, self.target, f"removing alias {alias} of model {name}",
                                        owned=f"model '{name}'") from None
                sync_state.record_item(self.store, self.target, "alias", f"{name}/{alias}", None)
                self.summary.aliases += 1

    def _push_version(self, mv: dict[str, Any], remote_versions: dict[str, dict[str, str]]) -> None:
        name, version = mv["name"], mv["version"]
        label = f"version {version} of model {name}"
        if name not in remote_versions:
            try:
                self.client.create_registered_model(name, tags={"mlops_nb.created_by": "mlops-nb"})
            except Exception as exc:
                if error_code(exc) != "RESOURCE_ALREADY_EXISTS":
                    raise translate(exc, self.target, f"registering model {name}") from None
            found = self._call(f"listing the versions of model {name}", self.client.search_model_versions,
                               f"name = '{name}'")
            remote_versions[name] = {
                mvr.tags.get("mlops_nb.version"): mvr.version for mvr in found
                if mvr.tags.get("mlops_nb.store") == self.uuid}
        existing = remote_versions[name].get(str(version))
        if existing is None:
            remote_run = self.remote_ids.get(mv["run_id"]) if mv["run_id"] is not None else None
            source = self._model_source(mv, remote_run, label)
            tags = {"mlops_nb.store": self.uuid, "mlops_nb.version": str(version), "mlops_nb.format": "skops"}
            if mv.get("class"):
                tags["mlops_nb.class"] = mv["class"]
            if mv.get("gate_passed") is not None:
                tags["mlops_nb.gate"] = "passed" if mv["gate_passed"] else "failed"
            if mv.get("forced"):
                tags["mlops_nb.forced"] = mv["forced"]
            created = self._call(f"creating {label}", self.client.create_model_version, name, source,
                                 run_id=remote_run, tags=tags, description=mv.get("description") or None,
                                 await_creation_for=0, owned=f"model '{name}'")
            existing = created.version
            self.summary.model_versions += 1
        sync_state.record_item(self.store, self.target, "model_version", f"{name}/{version}", str(existing))

    def _model_source(self, mv: dict[str, Any], remote_run: str | None, label: str) -> str:
        """Where the version's skops file is on the server: uploaded with its run's artifacts."""
        if remote_run is None or mv.get("artifact_id") is None:
            raise SyncError(f"{label} has no pushed run or no model file; sync its run first "
                            f"(mlops-nb sync mlflow without --project/--since)")
        artifact = self.store.artifact(mv["artifact_id"])
        key = f"{mv['run_id']}:{artifact['sha256']}"
        path = self.artifacts.get(key)
        if path is None:  # the artifact belongs to another run: upload it to this one
            remote_dir = f"mlops-nb/artifacts/{artifact['sha256'][:16]}"
            local = self.store.artifact_path(artifact["path"])
            with tempfile.TemporaryDirectory(prefix="mlops-nb-sync-") as tmp:
                named = Path(tmp) / _safe_name(artifact["name"])
                named.symlink_to(local.resolve())
                self._upload(f"uploading the model file of {label}", remote_run, str(named), remote_dir,
                             folder=False)
            path = f"{remote_dir}/{named.name}"
            self._record_artifact(key, path)
        base = self.artifact_uris.get(remote_run) or self._call(
            f"reading run {remote_run}", self.client.get_run, remote_run).info.artifact_uri
        return f"{base.rstrip('/')}/{path}"


def _safe_name(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name) or "artifact"


def _hash(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:32]
