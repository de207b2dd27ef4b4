"""Run integrity, judged from event histories like the ones a notebook session records."""

import hashlib
import sqlite3

from mlops_nb.tracking.integrity import (
    Warning,
    check,
    latest_attempts,
    stale_stages,
    unstaged_cells,
)

FULL = ("requirements", "data", "eda", "features", "selection", "model", "tuning", "validation")


def history(*steps):
    """Events for the steps in execution order.

    A step is a stage name, ``"cell"`` (a cell outside any stage), ``"restart"``, or a
    ``(step, overrides)`` pair, e.g. ``("model", {"status": "error"})``. A stage's source is
    ``%%stage NAME`` plus a body unless ``source`` is given; the hash follows the source.
    """
    events, count = [], 0
    for seq, step in enumerate(steps, 1):
        name, overrides = (step, {}) if isinstance(step, str) else step
        if name == "restart":
            count = 0
            events.append({"seq": seq, "kind": "restart", "stage": None, "source": None,
                           "source_sha256": None, "execution_count": None, "cell_id": None,
                           "status": None})
            continue
        count += 1
        kind, stage = ("cell", None) if name == "cell" else ("stage", name)
        source = overrides.get("source", "x = 1" if name == "cell" else f"%%stage {name}\npass")
        event = {"seq": seq, "kind": kind, "stage": stage, "source": source,
                 "execution_count": count, "cell_id": None, "status": "ok"}
        event.update(overrides)
        event["source_sha256"] = hashlib.sha256(event["source"].encode()).hexdigest()
        events.append(event)
    return events


def kinds(warnings):
    return [(w.kind, w.stage) for w in warnings]


def test_clean_run_in_order_has_no_warnings():
    events = history(*FULL, "deployment")
    assert check(events) == []
    assert stale_stages(events) == set()
    assert list(latest_attempts(events)) == [*FULL, "deployment"]


def test_features_rerun_after_model_makes_the_later_stages_stale_until_they_run_again():
    events = history(*FULL, "features")
    warnings = check(events)
    assert kinds(warnings) == [
        ("stale", "selection"), ("stale", "model"), ("stale", "tuning"), ("stale", "validation"),
    ]
    assert warnings[1].message == (
        "model is stale: features ran again after it (re-run model and the stages after it)"
    )
    assert warnings[1].details["causes"] == ["features"]
    assert stale_stages(events) == {"selection", "model", "tuning", "validation"}

    # Selection was skipped on the way back: it is stale, and staleness flows downstream, so the
    # model re-fitted on selection's old output is stale too.
    partly = history(*FULL, "features", "model", "tuning")
    assert stale_stages(partly) == {"selection", "model", "tuning", "validation"}
    assert "it used selection, which is stale" in {w.stage: w for w in check(partly)}["model"].message

    rerun = history(*FULL, "features", "selection", "model", "tuning", "validation")
    assert check(rerun) == []


def test_data_first_run_after_model():
    events = history("requirements", "features", "model", "data")
    warnings = check(events)
    assert kinds(warnings) == [("stale", "features"), ("stale", "model")]
    assert warnings[1].message.startswith("model is stale: data first ran after it")


def test_eda_and_requirements_reruns_do_not_make_model_stale():
    events = history(*FULL, "eda", "requirements", "eda")
    assert check(events) == []


def test_edited_stage_with_cell_ids():
    events = history(
        "data",
        ("features", {"cell_id": "c2", "source": "%%stage features\nX = df[['a']]"}),
        "model",
        ("features", {"cell_id": "c2", "source": "%%stage features\nX = df[['a', 'b']]"}),
        "model",
    )
    warnings = check(events)
    assert kinds(warnings) == [("edited", "features")]
    assert warnings[0].message == "features was edited between attempts (2 versions of its source)"
    assert warnings[0].details["cell_id"] == "c2"
    assert len(warnings[0].details["sha256"]) == 2


def test_two_eda_cells_with_their_own_ids_are_not_an_edit():
    first = ("eda", {"cell_id": "a", "source": "%%stage eda\ndf.describe()"})
    second = ("eda", {"cell_id": "b", "source": "%%stage eda\ndf.hist()"})
    events = history("data", first, second, "features", first, second)
    assert check(events) == []


def test_edited_stage_without_cell_ids_nbclient():
    old = ("features", {"source": "%%stage features\nX = df[['a']]"})
    new = ("features", {"source": "%%stage features\nX = df[['a', 'b']]"})
    events = history("data", old, "model", new, "model")
    assert kinds(check(events)) == [("edited", "features")]

    # Two eda cells run back to back, once or twice, look like cells, not edits.
    describe = ("eda", {"source": "%%stage eda\ndf.describe()"})
    hist = ("eda", {"source": "%%stage eda\ndf.hist()"})
    assert check(history("data", describe, hist, "features", describe, hist)) == []
    # Re-running only the second of them is not an edit either.
    assert check(history("data", describe, hist, "features", hist)) == []


def test_unstaged_cells_between_stages_are_one_warning_per_gap():
    events = history(
        ("cell", {"source": "import pandas as pd"}),
        "data",
        "features",
        ("cell", {"source": "X = X.dropna()"}),
        ("cell", {"source": "X.shape"}),
        "model",
        ("cell", {"source": "print(model)"}),
    )
    warnings = check(events)
    assert kinds(warnings) == [("unstaged_cells", "model")]
    assert warnings[0].message.startswith(
        "2 cells outside any stage ran between features and model"
    )
    cells = warnings[0].details["cells"]
    assert [c["execution_count"] for c in cells] == [4, 5]
    assert [c["source"] for c in cells] == ["X = X.dropna()", "X.shape"]

    lineage = unstaged_cells(events)
    assert [c["source"] for c in lineage] == [
        "import pandas as pd", "X = X.dropna()", "X.shape", "print(model)",
    ]
    assert (lineage[0]["after_stage"], lineage[0]["before_stage"]) == (None, "data")
    assert (lineage[-1]["after_stage"], lineage[-1]["before_stage"]) == ("model", None)


def test_restart_then_only_later_stages_rerun_is_stale():
    events = history("data", "features", "model", "restart", "model", "validation")
    warnings = check(events)
    assert kinds(warnings) == [("stale", "model"), ("stale", "validation"), ("restart", "model")]
    assert warnings[0].message.startswith(
        "model is stale: it ran after a kernel restart but data did not run again since"
    )
    assert warnings[0].details["causes"] == ["data", "features"]
    assert warnings[2].message == (
        "the kernel restarted after model; stages before the restart used state that is gone"
    )


def test_restart_then_full_rerun_leaves_only_the_restart_warning():
    events = history(*FULL, "restart", *FULL)
    assert kinds(check(events)) == [("restart", "validation")]
    assert stale_stages(events) == set()


def test_failed_latest_attempt():
    events = history(*FULL[:-1], ("validation", {"status": "error"}))
    warnings = check(events)
    assert kinds(warnings) == [("failed", "validation")]
    assert warnings[0].message.startswith("validation's latest attempt failed")
    assert latest_attempts(events)["validation"]["status"] == "error"

    # A later success clears it; an earlier failure does not matter.
    assert check(history(*FULL[:-1], ("validation", {"status": "error"}), "validation")) == []


def test_rows_read_from_sqlite_and_warnings_serialise():
    db = sqlite3.connect(":memory:")
    db.row_factory = sqlite3.Row
    events = history("data", "features", "model", "features")
    columns = list(events[0])
    db.execute(f"create table events ({', '.join(columns)})")
    db.executemany(f"insert into events values ({', '.join('?' * len(columns))})",
                   [tuple(e[c] for c in columns) for e in events])
    rows = db.execute("select * from events order by seq desc").fetchall()
    (warning,) = check(rows)
    assert isinstance(warning, Warning)
    assert warning.to_dict() == {
        "kind": "stale", "stage": "model", "message": warning.message,
        "details": {"reason": "order", "causes": ["features"], "seq": 3},
    }


def test_judging_one_event_at_a_time_agrees_with_judging_the_whole_run():
    """The kernel judges incrementally (a Judge fed only new events); the verdicts must be those of
    judging every event again, whatever the order of stages, cells, restarts, failures and edits."""
    import random

    from mlops_nb.tracking.integrity import Judge, check

    stages = ["data", "eda", "features", "selection", "model", "tuning", "validation", "deployment"]
    rng = random.Random(7)
    for _ in range(300):
        events = []
        for seq in range(1, rng.randint(2, 30)):
            kind = rng.choice(["stage"] * 5 + ["cell", "cell", "restart"])
            stage = rng.choice(stages) if kind == "stage" else None
            events.append({"seq": seq, "kind": kind, "stage": stage, "source": "x",
                           "source_sha256": rng.choice(["a", "b", None]), "execution_count": seq,
                           "cell_id": rng.choice([None, None, "c1"]), "status": rng.choice(["ok", "ok", "error"])})
        judge = Judge()
        for i, event in enumerate(events):
            judge.add(event)
            assert [w.to_dict() for w in judge.warnings()] == [w.to_dict() for w in check(events[: i + 1])]
