"""Export's proof that features.py gives each row the model input the notebook gave it.

Runs in export's replay process, after ``prepare`` reproduced the notebook's model input X from the
data stage's frames. The candidate statements (:mod:`mlops_nb.deploy.script.rowwise`) are run one
by one on all the rows (as the notebook ran them) and on a sample of the rows (a batch, then single
rows, the target missing); a statement that fails on the sample, or whose frames differ there from
the same rows of the whole run, is left out. Then features.py is rendered from what is left,
loaded, and must reproduce X exactly on every sample. Otherwise export names the statement that
cannot be replayed per row (a split, a fit on the whole frame, a use of the target) and the fix.
"""

from __future__ import annotations

import contextlib
import io
import re
from typing import Any

from mlops_nb.deploy.runtime import bind_rows
from mlops_nb.deploy.scorer import object_labels
from mlops_nb.deploy.script.features import render_features

#: Rows in the batch sample, and single rows replayed on their own (plus rows with missing values).
BATCH_ROWS = 100
SINGLE_ROWS = 3


class NotRowwise(Exception):
    """The features cannot be replayed per row; the message is export's one line."""


def raw_rows(frames: dict[str, Any], binding: dict[str, Any], target: str) -> Any:
    """The data stage's rows without the target: what features.py takes."""
    if binding["mode"] == "frame":
        return frames[binding["frame"]].drop(columns=[target])
    return frames[binding["X"]]


def prove(request: dict[str, Any], frames: dict[str, Any], X: Any) -> tuple[str, list[str]]:
    """features.py's text, proved on samples of ``frames`` (the data stage's frames, untouched)
    against ``X`` (the notebook's model input), and notes on the statements it leaves out.
    :class:`NotRowwise` when it cannot be proved."""
    import numpy as np
    import pandas as pd

    binding, target, features = request["binding"], request["target"], request["features"]
    raw = raw_rows(frames, binding, target)
    columns = [str(c) for c in (frames[binding["frame"]].columns if binding["mode"] == "frame" else raw.columns)]
    expected = X[features] if features and set(features) <= set(X.columns) else X
    if not raw.index.is_unique or not expected.index.isin(raw.index).all():
        raise NotRowwise(f"the features steps change the rows' index, so export cannot tell which row of "
                         f"{request['x_name']} came from which data row; keep the data stage's index (no "
                         f"reset_index or concat) in the features cells and re-run the stages")
    rng = np.random.default_rng(0)
    labels = list(expected.index)
    batch = [labels[i] for i in sorted(rng.choice(len(labels), min(BATCH_ROWS, len(labels)), replace=False))]
    singles = [labels[i] for i in rng.choice(len(labels), min(SINGLE_ROWS, len(labels)), replace=False)]
    with_missing = raw.loc[labels].isna().any(axis=1)
    singles += [label for label in with_missing[with_missing].index[:SINGLE_ROWS] if label not in singles]
    samples = [batch, *([label] for label in singles)]
    every = list(dict.fromkeys([*batch, *singles]))

    statements = request["statements"]
    base = _globals(render_features(request, statements, columns))
    truth = _whole_run(statements, base, frames, every, request, target)
    skipped: dict[int, str] = {}
    for rows in samples:
        while (bad := _first_difference(statements, skipped, base, bind_rows(raw.loc[rows], binding, target, columns),
                                        truth, rows, target)) is not None:
            skipped[bad[0]] = bad[1]
    kept = [s for i, s in enumerate(statements) if i not in skipped]
    text = render_features(request, kept, columns)
    module = _globals(text)
    for rows in samples:
        got = None
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                # labelled as the scorer labels the rows it gives features.py (object, not str)
                got = module["model_input"](object_labels(raw.loc[rows].copy()))
            got = got[features] if features else got
            pd.testing.assert_frame_equal(got, expected.loc[rows], check_exact=True, check_column_type=False)
        except Exception:
            raise NotRowwise(_refusal(statements, skipped, request, _differing(got, expected.loc[rows]))) from None
    notes = [f"features.py leaves out {_where(statements[i])} (`{_first_line(statements[i])}`): the model's input "
             f"does not depend on it row by row" for i in sorted(skipped)]
    return text, notes


def _globals(text: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "mlops_nb_features", "__file__": "features.py"}
    exec(compile(text, "features.py", "exec"), namespace)  # noqa: S102 - the text export just rendered
    return namespace


def _run(statement: dict[str, Any], namespace: dict[str, Any]) -> None:
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(statement["code"], "<cell>", "exec"), namespace)  # noqa: S102 - the user's own cell


def _whole_run(statements: list[dict], base: dict[str, Any], frames: dict[str, Any], rows: list,
               request: dict[str, Any], target: str) -> list[dict[str, Any]]:
    """After each statement run on all the rows, the ``rows`` of every frame it wrote that has them."""
    namespace = {**base, **{name: frame.copy() for name, frame in frames.items()}}
    truth = []
    for statement in statements:
        try:
            _run(statement, namespace)
        except Exception as exc:
            raise NotRowwise(f"the {_where(statement)} (`{_first_line(statement)}`) fails when replayed with only "
                             f"the lines the model's input needs ({type(exc).__name__}: {exc}); make the features "
                             f"cells self-contained and re-run the stages") from None
        truth.append({name: _rows_of(namespace.get(name), rows, target) for name in statement["writes"]})
    return truth


def _rows_of(value: Any, rows: list, target: str) -> Any:
    """``value``'s ``rows`` (without the target column) when it is a frame or series holding them all."""
    import pandas as pd

    if not hasattr(value, "index") or not hasattr(value, "loc") or not pd.Index(rows).isin(value.index).all():
        return None
    try:
        picked = value.loc[rows]
    except Exception:
        return None
    if getattr(picked, "ndim", 1) == 2 and target in picked.columns:
        picked = picked.drop(columns=[target])
    return picked


def _first_difference(statements: list[dict], skipped: dict[int, str], base: dict[str, Any],
                      bound: dict[str, Any], truth: list[dict[str, Any]], rows: list, target: str
                      ) -> tuple[int, str] | None:
    """The first statement not yet skipped that fails on ``rows`` alone or gives their frames other
    values than the whole run did, with why; None when every one agrees."""
    import pandas as pd

    namespace = {**base, **bound}
    for i, statement in enumerate(statements):
        if i in skipped:
            continue
        try:
            _run(statement, namespace)
        except Exception as exc:
            return i, "missing" if isinstance(exc, NameError) else "fails"
        for name, whole in truth[i].items():
            if whole is None:
                continue
            whole = whole.loc[rows]
            mine = _rows_of(namespace.get(name), rows, target)
            try:
                assert mine is not None
                testing = pd.testing
                same = testing.assert_frame_equal if getattr(whole, "ndim", 1) == 2 else testing.assert_series_equal
                same(mine, whole, check_exact=True)
            except AssertionError:
                # the target itself, missing in new rows: harmless unless a line the input needs uses it
                return i, "target" if isinstance(whole, pd.Series) and whole.name == target else "differs"
    return None


def _differing(got: Any, expected: Any) -> list[str]:
    """The model input's columns that features.py did not reproduce (all of them when it failed)."""
    if got is None or getattr(got, "ndim", 0) != 2:
        return [str(c) for c in expected.columns]
    out = []
    for column in expected.columns:
        try:
            assert column in got.columns
            import pandas as pd

            pd.testing.assert_series_equal(got[column], expected[column], check_exact=True)
        except (AssertionError, KeyError, TypeError, ValueError):
            out.append(str(column))
    return out


def _refusal(statements: list[dict], skipped: dict[int, str], request: dict[str, Any], columns: list[str]) -> str:
    """The one line export refuses with: the statement to blame and how to fix it. Of the statements
    left out, one that names a column the input lacks, else the first that failed or differed."""
    causes = [i for i in sorted(skipped) if skipped[i] in ("fails", "differs")] or sorted(skipped)
    naming = [i for i in causes if any(re.search(rf"[\"']{re.escape(c)}[\"']", statements[i]["code"]) for c in columns)]
    causes = naming or causes
    if not causes:
        return (f"features.py cannot reproduce the notebook's model input {request['x_name']} row by row; move "
                f"the features cells' whole-frame steps into the scikit-learn pipeline and re-run the stages")
    statement = statements[causes[0]]
    code = statement["code"]
    target, y_name = request["target"], request.get("y_name")
    if re.search(r"split|\.sample\(", code):
        why = ("it splits the rows; make the model's input from all rows before the split (move the features lines "
               "before it, and let the model cell split)")
    elif re.search(rf"[\"']{re.escape(str(target))}[\"']", code) or (y_name and re.search(rf"\b{re.escape(y_name)}\b",
                                                                                         code)):
        why = (f"it uses the target {target!r}, which new rows do not have; move it into the scikit-learn pipeline "
               f"(fitted with the model) or drop it")
    else:
        why = ("a row's result depends on the other rows (a fit or a statistic over the whole frame); move it into "
               "the scikit-learn pipeline (e.g. a ColumnTransformer with SimpleImputer or StandardScaler)")
    return (f"the {_where(statement)} cannot be replayed per row (`{_first_line(statement)}`): {why}, then re-run "
            f"the stages and export again")


def _where(statement: dict[str, Any]) -> str:
    line = f" line {statement['line']}" if statement.get("line") else ""
    return f"{statement['stage']} cell [{statement['cell']}]{line}"


def _first_line(statement: dict[str, Any]) -> str:
    first = statement["code"].strip().splitlines()[0].strip()
    return first if len(first) <= 80 else first[:77] + "..."
