"""What a check compares: the check view of a run (the one view of a run, plus its events and the
frames its data stages produced) and the run it is compared with, by default the one that holds
the registry's champion. Reads only; :mod:`mlops_nb.tracking.judgement` judges them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlops_nb.errors import RunNotFound
from mlops_nb.store import Store
from mlops_nb.tracking.judgement import FRAME_STAGES
from mlops_nb.tracking.views import run_view

_EVENT_KEYS = ("seq", "kind", "stage", "source", "status", "execution_count")


def check_view(store: Store, run_id: int) -> dict[str, Any]:
    """:func:`~mlops_nb.tracking.views.run_view` of ``run_id`` with ``events`` (every stage attempt
    and outside cell, in order, with its source), ``frames`` (what the latest successful data,
    features and selection attempts captured: fingerprint, rows, column names) and ``store``."""
    view = run_view(store, run_id)
    view["events"] = [{key: event.get(key) for key in _EVENT_KEYS} for event in store.events(run_id)]
    view["frames"] = store.stage_frames(run_id, FRAME_STAGES)
    view["store"] = str(store.path)
    return view


@dataclass(frozen=True)
class Against:
    """What a run is compared with: the run (None when nothing), a label for reports, and why
    there is no comparison when there is none. ``model`` is the champion's model name, if any."""

    run_id: int | None
    label: str | None
    reason: str | None = None
    model: str | None = None


def champion_for(store: Store, run_id: int) -> Against:
    """The champion run ``run_id`` is compared with: the champion of the model this run registered
    a version of, else of the model last registered from a run of the same project."""
    project = store.run(run_id)["project"]
    versions = store.model_versions()
    projects: dict[int, str | None] = {}

    def project_of(other: int | None) -> str | None:
        if other is None:
            return None
        if other not in projects:
            try:
                projects[other] = store.run(other)["project"]
            except RunNotFound:
                projects[other] = None
        return projects[other]

    mine = [v for v in versions if v["run_id"] == run_id]
    ours = mine or [v for v in versions if project_of(v["run_id"]) == project]
    if not ours:
        return Against(None, None, f"no champion: no model is registered from project {project!r} yet")
    name = max(ours, key=lambda v: (v["created"], v["version"]))["name"]
    champion = store.aliases(name).get("champion")
    if champion is None:
        return Against(None, None, f"no champion: model {name!r} has no champion", model=name)
    row = store.model_version(name, champion)
    label = f"champion {name} v{champion} (run {row['run_id']})"
    if row["run_id"] == run_id:
        return Against(None, label, f"not compared: this run holds the champion ({name} v{champion})", model=name)
    if row["run_id"] is None:
        return Against(None, label, f"not compared: the champion {name} v{champion} has no run", model=name)
    return Against(row["run_id"], label, model=name)


def resolve_against(store: Store | None, run_id: int | None, against: str) -> Against:
    """``against`` as ``mlops-nb check --against`` takes it: ``champion``, ``none`` or a run id
    (:class:`~mlops_nb.errors.RunNotFound` when the store has no such run)."""
    if against == "none":
        return Against(None, None, "not compared (--against none)")
    if against != "champion":
        if store is None:
            raise RunNotFound(f"no run {against}: the store does not exist yet; list the runs with `mlops-nb runs`")
        other = store.run(int(against))["id"]
        return Against(other, f"run {other}")
    if store is None or run_id is None:
        return Against(None, None, "no champion: the store holds no model yet")
    return champion_for(store, run_id)
