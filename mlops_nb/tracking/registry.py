"""Model versions and aliases: which fitted model of which run is ``churn`` version 3, and which
version is the ``champion``.

A version points at a run and at the skops artifact of a model that run captured (the latest
capture of a notebook variable, or a model handed in directly). Aliases name versions:

``champion``
    the version that serves and that retraining must beat; the first version registered gets it
    (unless it was registered with ``force``: a forced version is never crowned automatically);
``challenger``
    a newer version waiting for promotion; every later registration gets it;
``previous``
    the champion before the current one; moving ``champion`` sets it, so a rollback is one promote.

Every alias move is kept in ``alias_history`` with when, by which command, in which run and why.

A version records the stage attempt its model came from (``stage_id``) and that attempt's
requirement gate (``gate_passed``). Registering a model whose gate failed, that no gate measured,
or whose stage is stale is refused (:func:`judge_attempt` says why) unless a reason is given with
``force``; the reason is kept in ``forced``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from mlops_nb.errors import RegistryError
from mlops_nb.stages import STAGE_INDEX
from mlops_nb.store import Store, open_store
from mlops_nb.store.writer import Writer
from mlops_nb.tracking import integrity
from mlops_nb.tracking.context import current

ALIASES = ("champion", "challenger", "previous")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_MODEL_KINDS = ("estimator", "search")


@dataclass(frozen=True)
class ModelVersion:
    """One registered version of a model."""

    name: str
    version: int
    run_id: int | None
    artifact_id: int
    capture_id: int | None
    class_path: str | None
    created: float
    description: str | None = None
    aliases: list[str] = field(default_factory=list)
    stage_id: int | None = None
    gate_passed: bool | None = None
    forced: str | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ModelVersion:
        gate = row.get("gate_passed")
        return cls(row["name"], row["version"], row["run_id"], row["artifact_id"], row["capture_id"], row["class"],
                   row["created"], row["description"], list(row["aliases"]), row.get("stage_id"),
                   None if gate is None else bool(gate), row.get("forced"))

    def __str__(self) -> str:
        tags = f" ({', '.join(self.aliases)})" if self.aliases else ""
        return f"{self.name} version {self.version}{tags}"


def check_name(name: str) -> str:
    """``name`` if it can name a model (letters, digits, ``_ . -``), else :class:`RegistryError`."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise RegistryError(
            f"{name!r} cannot name a model; use letters, digits, '_', '.' and '-' (for example churn-rf)")
    return name


def context(run: Any, store: str | os.PathLike | Store | None) -> tuple[Store, int | None, dict | None]:
    """The store, the run id and the namespace to work with: explicit arguments first, then the
    current run a front end registered (:mod:`mlops_nb.tracking.context`), then ``$MLOPS_NB_STORE``
    / ``./mlops.db`` with no run."""
    here = current()
    namespace = here.namespace if here is not None else None
    here_run = here.run if here is not None else None
    run_id = getattr(run, "id", run)
    if store is None:
        store = getattr(run, "store", None)
    if store is None and here_run is not None:
        store = here_run.store
    if run_id is None and here_run is not None:
        run_id = here_run.id
    opened = open_store(store if store is not None else (here.store if here is not None else None))
    if run_id is not None:
        run_id = opened.run(run_id)["id"]
    return opened, run_id, namespace


def _model_captures(store: Store, run_id: int) -> list[dict[str, Any]]:
    return [c for c in store.captures(run_id) if c["kind"] in _MODEL_KINDS and c["artifact_id"] is not None]


def _capture_for(store: Store, run_id: int, variable: str) -> dict[str, Any]:
    found = [c for c in _model_captures(store, run_id) if c["name"] == variable]
    if not found:
        names = sorted({c["name"] for c in _model_captures(store, run_id)})
        known = f"its captured models are: {', '.join(names)}" if names else "it captured no fitted model yet"
        raise RegistryError(
            f"run {run_id} has no captured model {variable!r}; {known}. Fit the model in a `%%stage model` "
            f"(or tuning) cell, then register it")
    return found[-1]


@dataclass(frozen=True)
class Attempt:
    """What a model's stage attempt says about it: the attempt (``stage_id``), its requirement gate
    (``gate_passed``: True, False, or None when no gate measured it) and, one line each, why the
    model should not be trusted (``problems``: empty when it may be)."""

    stage_id: int | None
    gate_passed: bool | None
    problems: list[str]


def judge_attempt(store: Store, run_id: int, capture: dict[str, Any] | None) -> Attempt:
    """Judge the stage attempt that captured ``capture`` (a row of ``store.captures(run_id)``), as
    of that attempt, not of the run's latest state: its gate is the last one measured after it and
    before the model was fitted again; it is stale when a stage it depends on ran again after it (or
    was already stale when it ran). ``capture`` None (a model no stage captured) has no gate."""
    if capture is None or capture.get("seq") is None:
        return Attempt(None, None, [
            "no gate: no stage cell fitted this model, so no validation stage measured it; fit it in a "
            "`%%stage model` cell and run the validation stage"])
    seq, stage = capture["seq"], capture.get("stage") or "model"
    order = STAGE_INDEX.get(stage, STAGE_INDEX["model"])
    events = store.events(run_id)
    attempts = [e for e in events if e["kind"] == "stage" and e["stage"] in integrity.UPSTREAM]
    refit = min((e["seq"] for e in attempts if e["seq"] > seq and STAGE_INDEX[e["stage"]] >= order), default=None)
    problems = []
    if capture.get("stage_status") == "error":
        problems.append(f"failed: the {stage} stage that fitted it ended with an error")
    # The run as if this attempt were its stage's latest: stale then (or made stale by a later
    # re-run of a stage it depends on) means it was fitted on something other than what retrain.py replays.
    as_of = [e for e in events if not (e["kind"] == "stage" and e["stage"] == stage and e["seq"] > seq)]
    stale = [w.message for w in integrity.check(as_of) if w.kind == "stale" and w.stage == stage]
    if stale:
        problems.append(f"stale: {stale[0]}")
    gates = [g for g in store.gates(run_id) if (g["seq"] or 0) > seq and (refit is None or g["seq"] < refit)]
    gate = gates[-1] if gates else None
    if gate is None:
        requirement = store.requirement(run_id)
        if requirement is None:
            problems.append("no gate: the run states no requirement; add `%mlops require METRIC >= VALUE "
                            "--target COLUMN` and run the validation stage")
        else:
            problems.append(f"no gate: no validation stage measured {requirement['metric']} after this model was "
                            f"fitted; run the validation stage")
    elif not gate["passed"]:
        value = "nothing" if gate["value"] is None else f"{gate['value']:.4g}"
        problems.append(f"gate failed: requirement {gate['metric']} {gate['op']} {gate['threshold']:g} got {value} "
                        f"in the validation stage")
    return Attempt(capture.get("stage_id"), None if gate is None else bool(gate["passed"]), problems)


def refusal(what: str, problems: list[str], command: str) -> str:
    """The one-line refusal of ``what`` for ``problems``, naming the fix and the override."""
    return (f"refusing to {what}: {'; '.join(problems)}. Fix that, or {command} --force \"REASON\" "
            f"(force=\"REASON\" in Python) to go on; the reason is recorded")


def register(
    model_or_run: Any,
    name: str,
    *,
    run: Any = None,
    description: str | None = None,
    by: str = "mnb.register",
    force: str | None = None,
    store: str | os.PathLike | Store | None = None,
) -> ModelVersion:
    """Register a new version of model ``name`` and return it.

    ``model_or_run`` is one of:

    - the name of a notebook variable (``"clf"``): the latest capture of that variable in the run,
      with the skops artifact saved when its stage ran;
    - a fitted estimator: the run's latest capture of a variable bound to it in the notebook, or,
      when there is none, a fresh skops artifact of it linked to the run;
    - a run (a :class:`~mlops_nb.tracking.Run` or its id): its one captured model (when it captured
      several, name the variable instead).

    ``run``: the run to look in (default: the notebook's current run). ``description``: free text.
    ``by``: who registers, kept in the alias history. The first version of a name becomes the
    ``champion``; later ones become the ``challenger`` (promote them with :func:`promote`).

    A model whose gate failed, that no gate measured, or whose stage is stale
    (:func:`judge_attempt`) is refused with :class:`RegistryError` unless ``force`` gives a reason;
    a forced version is registered as the ``challenger``, never the champion.
    """
    check_name(name)
    if force is not None and not str(force).strip():
        raise RegistryError('force needs a reason, e.g. --force "demo only, not for production"')
    from mlops_nb.tracking import Run

    if isinstance(model_or_run, Run) or (isinstance(model_or_run, int) and not isinstance(model_or_run, bool)):
        opened, run_id, _ = context(model_or_run, store)
        captures = _model_captures(opened, run_id)
        names = list(dict.fromkeys(c["name"] for c in captures))
        if not names:
            raise RegistryError(f"run {run_id} captured no fitted model; fit one in a `%%stage model` cell first")
        if len(names) > 1:
            raise RegistryError(
                f"run {run_id} captured several models ({', '.join(names)}); say which: "
                f"mnb.register({names[-1]!r}, {name!r}, run={run_id}) or %mlops register {names[-1]} --name {name}")
        return _add(opened, name, run_id, captures[-1], description, by, force)
    opened, run_id, namespace = context(run, store)
    if isinstance(model_or_run, str):
        if run_id is None:
            raise RegistryError(
                f"no run to find {model_or_run!r} in; pass run=RUN_ID, or register from the notebook that ran it")
        return _add(opened, name, run_id, _capture_for(opened, run_id, model_or_run), description, by, force)
    from mlops_nb import capture

    if not capture.is_estimator(model_or_run):
        raise RegistryError(
            f"cannot register a {type(model_or_run).__name__}; give a fitted estimator, the name of a notebook "
            f"variable holding one, or a run")
    if run_id is not None and namespace is not None:
        bound = {n for n, v in namespace.items() if v is model_or_run and not n.startswith("_")}
        matches = [c for c in _model_captures(opened, run_id) if c["name"] in bound]
        if matches:
            return _add(opened, name, run_id, matches[-1], description, by, force)
    record = capture.describe("model", model_or_run)
    if record is None or record["kind"] not in _MODEL_KINDS:
        raise RegistryError("the model is not fitted; fit it before registering it")
    estimator = getattr(model_or_run, "best_estimator_", model_or_run)
    data, _ = capture.dump_model(estimator)
    if run_id is None:
        raise RegistryError("no run to link the model to; start one (mnb.start or %mlops start) or pass run=RUN_ID")
    attempt = _allowed(judge_attempt(opened, run_id, None), name, by, force)
    writer = Writer(opened)
    stored = writer.put_bytes(data)
    with writer.transaction():
        artifact_id = writer.add_artifact(run_id, f"{name}.skops", stored, kind="model")
        version = writer.add_model_version(name, run_id=run_id, artifact_id=artifact_id, capture_id=None,
                                           class_path=record["class"], description=description,
                                           stage_id=attempt.stage_id, gate_passed=attempt.gate_passed,
                                           forced=_forced(attempt, force))
        _auto_alias(writer, name, version, run_id, by, forced=_forced(attempt, force))
    return get_version(name, version, store=opened)


def _allowed(attempt: Attempt, name: str, by: str, force: str | None) -> Attempt:
    """``attempt`` when it may be registered (or ``force`` says why anyway), else :class:`RegistryError`."""
    if attempt.problems and force is None:
        command = "%mlops register VAR --name " + name if by.startswith("%") else f"mnb.register(..., {name!r})"
        raise RegistryError(refusal(f"register {name}", attempt.problems, command))
    return attempt


def _forced(attempt: Attempt, force: str | None) -> str | None:
    """The reason kept with a version registered despite a refusal (None when nothing was refused)."""
    return str(force).strip() if force is not None and attempt.problems else None


def _add(store: Store, name: str, run_id: int, found: dict, description: str | None, by: str,
         force: str | None = None) -> ModelVersion:
    attempt = _allowed(judge_attempt(store, run_id, found), name, by, force)
    forced = _forced(attempt, force)
    writer = Writer(store)
    with writer.transaction():  # the version and its alias together: no version is left without one
        version = writer.add_model_version(
            name, run_id=run_id, artifact_id=found["artifact_id"], capture_id=found["id"],
            # a search's saved model is its refitted best estimator: name that class, as load_model returns it
            class_path=found["summary"].get("estimator_class") or found["summary"].get("class"),
            description=description,
            stage_id=attempt.stage_id, gate_passed=attempt.gate_passed, forced=forced,
        )
        _auto_alias(writer, name, version, run_id, by, forced=forced)
    return get_version(name, version, store=store)


def _auto_alias(writer: Writer, name: str, version: int, run_id: int | None, by: str, *,
                forced: str | None = None) -> None:
    """The first version of a name becomes the champion, later ones the challenger; a forced one
    (registered despite a failed, missing or stale gate) is only ever the challenger."""
    if "champion" not in writer.store.aliases(name) and forced is None:
        writer.set_alias(name, "champion", version, by=by, run_id=run_id, reason="first registered version")
    else:
        reason = f"registered despite a refusal ({forced}); promote it yourself" if forced else "registered"
        writer.set_alias(name, "challenger", version, by=by, run_id=run_id, reason=reason)


def get_version(name: str, version: int | str | None = None, *, store: str | os.PathLike | Store | None = None
                ) -> ModelVersion:
    """Version ``version`` of model ``name``: a number, an alias, or None for the champion (else
    the latest version). :class:`RegistryError` lists what exists when it does not."""
    opened = open_store(store)
    versions = opened.model_versions(name)
    if not versions:
        known = sorted({v["name"] for v in opened.model_versions()})
        listing = f"registered models: {', '.join(known)}" if known else "no model is registered yet"
        raise RegistryError(f"no model named {name!r} ({listing}); register one with %mlops register VAR --name {name}")
    if version is None:
        aliases = opened.aliases(name)
        version = aliases.get("champion", versions[-1]["version"])
    elif isinstance(version, str) and not version.isdigit():
        aliases = opened.aliases(name)
        if version not in aliases:
            have = ", ".join(f"{a} -> {v}" for a, v in sorted(aliases.items())) or "none"
            raise RegistryError(f"model {name!r} has no alias {version!r} (its aliases: {have})")
        version = aliases[version]
    row = opened.model_version(name, int(version))
    if row is None:
        numbers = ", ".join(str(v["version"]) for v in versions)
        raise RegistryError(f"model {name!r} has no version {version}; its versions are {numbers}")
    return ModelVersion.from_row(row)


def promote(
    name: str,
    version: int | str,
    alias: str = "champion",
    *,
    reason: str | None = None,
    by: str = "mnb.promote",
    run: Any = None,
    store: str | os.PathLike | Store | None = None,
) -> ModelVersion:
    """Point ``alias`` (champion, challenger or previous) of model ``name`` at ``version``.

    Moving ``champion`` makes the version it left the ``previous`` one, and clears ``challenger``
    when it pointed at the new champion. ``reason``, ``by`` (the command) and ``run`` (the run
    that decided, e.g. a retraining run) go into the alias history.
    """
    if alias not in ALIASES:
        raise RegistryError(f"unknown alias {alias!r}; use one of: {', '.join(ALIASES)}")
    opened = open_store(store if store is not None else getattr(run, "store", None))
    target = get_version(name, version, store=opened)
    run_id = getattr(run, "id", run)
    writer = Writer(opened)
    with writer.transaction():
        before = writer.set_alias(name, alias, target.version, by=by, run_id=run_id, reason=reason)
        if alias == "champion" and before is not None and before != target.version:
            writer.set_alias(name, "previous", before, by=by, run_id=run_id,
                             reason=f"replaced as champion by version {target.version}")
        if alias == "champion" and opened.aliases(name).get("challenger") == target.version:
            writer.set_alias(name, "challenger", None, by=by, run_id=run_id, reason="promoted to champion")
    return get_version(name, target.version, store=opened)


def models(name: str | None = None, *, store: str | os.PathLike | Store | None = None) -> list[ModelVersion]:
    """Every registered version (of ``name``, or of all models), oldest first, with its aliases."""
    opened = open_store(store)
    if name is not None:
        get_version(name, store=opened)  # a clear error for an unknown name
    return [ModelVersion.from_row(row) for row in opened.model_versions(name)]


def alias_history(name: str, *, store: str | os.PathLike | Store | None = None) -> list[dict[str, Any]]:
    """Every alias move of model ``name``: ``alias``, ``version``, ``previous_version``, ``time``,
    ``by``, ``run_id``, ``reason``, oldest first."""
    opened = open_store(store)
    get_version(name, store=opened)
    return opened.alias_history(name)
