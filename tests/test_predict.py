"""A package predicts from the rows the notebook started from: `mlops-nb predict` (CSV and JSON, raw
rows and the model's input, the package's own input_example.json) and `mnb.load_model(...).predict`
give the notebook's own predictions on the same rows, for a mixed-type classifier and a regression;
a notebook whose features cannot be replayed per row is refused at export, naming the line."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys

import pandas as pd
import pytest
from notebook_helpers import notebook, run_notebook, text_of
from serving_notebooks import mixed_types, mixed_types_cells, regression, titanic_rows

import mlops_nb as mnb
from mlops_nb.deploy.exits import EXIT_BAD_DATA
from mlops_nb.deploy.layout import package_dir
from mlops_nb.deploy.predict import predict
from mlops_nb.deploy.rows import coerce, detect, example_json
from mlops_nb.deploy.schema import read_schema
from mlops_nb.deploy.verify import verify
from mlops_nb.format import json_safe
from mlops_nb.store import close_all


@pytest.fixture(scope="module", params=["mixed", "regression"])
def served(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(request.param)
    yield (mixed_types if request.param == "mixed" else regression)(folder)
    close_all()


def cli(*args: str, cwd) -> subprocess.CompletedProcess:
    """`mlops-nb` in a process of its own, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "mlops_nb", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def _expected(served) -> pd.DataFrame:
    return pd.read_pickle(served.folder / "expected.pkl").reset_index(drop=True)


def _same_predictions(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    got = got.reset_index(drop=True)
    assert list(got.columns) == list(expected.columns)
    assert got["prediction"].tolist() == expected["prediction"].tolist() or served_regression(expected)
    # the same rows in a batch of another size may differ in the last bit (BLAS), nothing more
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-12, atol=1e-12, check_dtype=False)


def served_regression(expected: pd.DataFrame) -> bool:
    return expected["prediction"].dtype.kind == "f"


def test_predict_takes_raw_rows_and_model_input_from_csv_and_json(served, tmp_path):
    expected = _expected(served)
    raw = pd.read_csv(served.folder / "raw.csv")
    X = pd.read_pickle(served.folder / "model_input.pkl")
    def records(frame: pd.DataFrame) -> str:  # every digit (pandas' to_json keeps 10), missing as null
        return json.dumps(json_safe(frame.astype(object).to_dict(orient="records")))

    files = {
        "raw.csv": lambda p: raw.to_csv(p, index=False),
        "raw.json": lambda p: p.write_text(records(raw)),
        "raw-split.json": lambda p: p.write_text(json.dumps({"dataframe_split": json.loads(example_json(raw))})),
        "model.csv": lambda p: X.to_csv(p, index=False),
        "model.json": lambda p: p.write_text(records(X)),
    }
    for name, write in files.items():
        write(tmp_path / name)
        out = tmp_path / f"{name}.predictions.csv"
        result = cli("predict", str(served.package), str(tmp_path / name), "-o", str(out), cwd=served.folder)
        assert result.returncode == 0, (name, result.stderr)
        kind = "raw" if name.startswith("raw") else "model"
        assert f"{len(raw)} predictions written to {out} (input: {kind} rows)" in result.stderr
        _same_predictions(pd.read_csv(out), expected)
    # told which rows they are: the raw rows as model input lack the features cell's columns
    result = cli("predict", str(served.package), str(tmp_path / "raw.csv"), "--input", "model", cwd=served.folder)
    assert result.returncode == EXIT_BAD_DATA
    added = "family_size" if served.name == "titanic" else "bmi_bp"
    assert f"column {added!r} is missing" in result.stderr and "Traceback" not in result.stderr


def test_load_model_predicts_raw_rows_like_the_notebook_and_stays_the_estimator(served):
    expected = _expected(served)
    raw = pd.read_csv(served.folder / "raw.csv")
    X = pd.read_pickle(served.folder / "model_input.pkl")
    model = mnb.load_model(served.package)
    assert type(model).__name__ == "Pipeline" and list(model.feature_names_in_) == list(X.columns)
    assert model.predict(raw).tolist() == expected["prediction"].tolist()
    assert model.predict(X).tolist() == expected["prediction"].tolist()  # the model's input still works
    if served.name == "titanic":
        assert model.predict_proba(raw)[:, 1].tolist() == expected["probability_1"].tolist()
    # the Python API gives the CLI's table, from a package root or a version folder
    _same_predictions(predict(served.package, raw), expected)
    _same_predictions(predict(package_dir(served.package), X, input="model"), expected)


def test_the_compiled_transform_serves_the_package_and_changes_no_prediction(served, monkeypatch):
    """Both packages' pipelines (a ColumnTransformer of imputers, a scaler and a one-hot encoder; a
    scaler before a Ridge) are transformed from their fitted attributes, and every prediction and
    probability, of the whole table and of each row alone, is scikit-learn's to the last bit."""
    from mlops_nb.deploy.model import load_model as bare_model
    from mlops_nb.deploy.scorer import compile_version
    from mlops_nb.deploy.transforms import OFF_VAR

    folder = package_dir(served.package)
    raw = pd.read_csv(served.folder / "raw.csv")
    fast = compile_version(folder, bare_model(folder))
    assert fast.compiled_transform() is not None
    monkeypatch.setenv(OFF_VAR, "1")
    plain = compile_version(folder, bare_model(folder))
    assert plain.compiled_transform() is None
    pd.testing.assert_frame_equal(fast.predict(raw), plain.predict(raw), check_exact=True)
    for i in range(0, len(raw), max(1, len(raw) // 60)):
        row = raw.iloc[[i]]
        pd.testing.assert_frame_equal(fast.predict(row), plain.predict(row), check_exact=True)


def test_input_example_holds_raw_rows_every_entry_point_accepts(served):
    schema = read_schema(served.package)
    example_path = package_dir(served.package) / "input_example.json"
    example = json.loads(example_path.read_text())
    assert example["columns"] == [c["name"] for c in schema["raw"]["columns"]]
    assert served.target not in example["columns"] and len(example["data"]) == 3
    result = cli("predict", str(served.package), str(example_path), cwd=served.folder)
    assert result.returncode == 0, result.stderr
    first3 = _expected(served).head(3)
    _same_predictions(pd.read_csv(io.StringIO(result.stdout)), first3)
    frame = pd.DataFrame(example["data"], columns=example["columns"])
    assert mnb.load_model(served.package).predict(frame).tolist() == first3["prediction"].tolist()


def test_schema_describes_raw_rows_and_model_input_and_features_py_is_verified(served):
    schema = read_schema(served.package)
    version = package_dir(served.package)
    assert "features.py" in verify(served.package)["files"]
    text = (version / "features.py").read_text()
    assert "def model_input(rows):" in text and "train_test_split" not in text
    raw = {c["name"]: c for c in schema["raw"]["columns"]}
    model = {c["name"]: c for c in schema["input"]["columns"]}
    if served.name == "titanic":
        assert raw["pclass"]["dtype"] == "int64" and model["pclass"]["dtype"] in ("object", "str")
        assert model["pclass"]["categories"] == ["1", "2", "3"] and "family_size" not in raw
        assert raw["age"]["nullable"] and "name" in raw and "name" not in model
        # strings "1", "2", "3" read back as numbers are strings again
        assert coerce(pd.DataFrame({"pclass": [1, 3]}), schema["input"]["columns"])["pclass"].tolist() == ["1", "3"]
        assert detect(list(model), schema) == "model" and detect(list(raw), schema) == "raw"
    else:
        assert "bmi_bp" in model and "bmi_bp" not in raw


def test_features_py_is_verified_before_it_is_imported(served, tmp_path):
    import shutil

    copy = shutil.copytree(package_dir(served.package), tmp_path / "copy")
    (copy / "features.py").write_text((copy / "features.py").read_text() + "\nraise SystemExit('ran')\n")
    result = cli("predict", str(copy), str(served.folder / "raw.csv"), cwd=served.folder)
    assert result.returncode == 82 and "features.py" in result.stderr and "ran" not in result.stdout


NOT_ROWWISE = {
    "a fit on the whole frame": (
        "%%stage features\ntitanic['family_size'] = titanic['sibsp'] + titanic['parch'] + 1\n"
        "titanic['pclass'] = titanic['pclass'].astype(str)\n"
        "titanic['age'] = titanic['age'].fillna(titanic['age'].median())\n"
        "X = titanic.drop(columns=['survived', 'name'])\ny = titanic['survived']",
        r"features cell \[\d+\] line 4 cannot be replayed per row \(`titanic\['age'\] = titanic\['age'\]\.fillna.*"
        r"move it into the scikit-learn pipeline"),
    "a use of the target": (
        "%%stage features\ntitanic['family_size'] = titanic['sibsp'] + titanic['parch'] + 1\n"
        "titanic['pclass'] = titanic['pclass'].astype(str)\n"
        "titanic['sex_rate'] = titanic.groupby('sex')['survived'].transform('mean')\n"
        "X = titanic.drop(columns=['survived', 'name'])\ny = titanic['survived']",
        r"features cell \[\d+\] line 4 cannot be replayed per row .*it uses the target 'survived'"),
    "a split": (
        "%%stage features\nfrom sklearn.model_selection import train_test_split\n"
        "X_all = titanic.drop(columns=['survived', 'name'])\n"
        "X, X_rest = train_test_split(X_all, test_size=0.3, random_state=0)\n"
        "X['family_size'] = X['sibsp'] + X['parch'] + 1\nX['pclass'] = X['pclass'].astype(str)\n"
        "y = titanic.loc[X.index, 'survived']",
        r"features cell \[\d+\] line 4 cannot be replayed per row \(`X, X_rest = train_test_split.*"
        r"before the split"),
}


@pytest.mark.parametrize("case", list(NOT_ROWWISE))
def test_features_that_cannot_be_replayed_per_row_are_refused_naming_the_line(case, tmp_path):
    features, message = NOT_ROWWISE[case]
    titanic_rows().to_csv(tmp_path / "titanic.csv", index=False)
    cells = [*mixed_types_cells(features, export=False), "%mlops export titanic --to deploy/titanic"]
    nb = run_notebook(notebook(cells), tmp_path, store=tmp_path / "mlops.db", timeout=300, allow_errors=True)
    out = text_of(nb.cells[-1].get("outputs", []))
    assert re.search(message, out), out
    assert len([line for line in out.splitlines() if "cannot be replayed" in line]) == 1  # one line
    assert not (tmp_path / "deploy" / "titanic").exists()
    close_all()


def test_the_compiled_check_takes_fitting_frames_as_they_are_and_refuses_the_rest_as_the_schema_does():
    import numpy as np

    from mlops_nb.deploy.schema import conform
    from mlops_nb.deploy.scorer import Plan
    from mlops_nb.errors import SchemaMismatch

    columns = [{"name": "n", "dtype": "float64", "kind": "numeric", "nullable": False},
               {"name": "k", "dtype": "int64", "kind": "numeric", "nullable": False},
               {"name": "c", "dtype": "str", "kind": "categorical", "nullable": False, "categories": ["a", "b"]},
               {"name": "b", "dtype": "boolean", "kind": "boolean", "nullable": False}]
    plan = Plan(columns, "the input")
    good = pd.DataFrame({"extra": [1, 2], "b": pd.array([True, False], dtype="boolean"), "c": ["a", "b"],
                         "k": [1, 2], "n": [0.5, 1.5]})
    assert plan.fast(good) is not None and list(plan.conform(good).columns) == ["n", "k", "c", "b"]
    # text numbers (a CSV's), a JSON null in a float column: converted, then fast again
    texts = good.astype({"k": object}).assign(k=["1", "2"])
    assert plan.conform(texts)["k"].tolist() == [1, 2]
    bad_frames = [good.assign(n=[np.inf, 1.0]), good.assign(n=[np.nan, 1.0]), good.assign(c=["a", None]),
                  good.assign(b=pd.array([True, None], dtype="boolean")), good.drop(columns=["k"])]
    for bad in bad_frames:
        assert plan.fast(bad) is None
        with pytest.raises(SchemaMismatch) as ours:
            plan.conform(bad)
        with pytest.raises(SchemaMismatch) as general:
            conform(coerce(bad, columns), columns, what="the input")
        assert str(ours.value) == str(general.value)


def test_a_float_only_payload_read_as_one_block_is_the_frame_pandas_and_the_schema_would_make():
    import numpy as np

    from mlops_nb.deploy.scorer import Plan
    from mlops_nb.deploy.serve.protocol import parse

    columns = [{"name": n, "dtype": "float64", "kind": "numeric", "nullable": True} for n in ("x", "y")]
    plan = Plan(columns, "the input")
    floats = frozenset({"x", "y"})
    payloads = [{"dataframe_split": {"columns": ["x", "y"], "data": [[1, 2.5], [None, 3], [4.25, -1]]}},
                {"dataframe_records": [{"x": 1, "y": 2.5}, {"x": None, "y": 3}]},
                {"instances": [{"y": 2.5, "x": 1e300}]}]
    for payload in payloads:
        body = json.dumps(payload).encode()
        block, _ = parse(body, "application/json", ["x", "y"], floats)
        general, _ = parse(body, "application/json", ["x", "y"])
        assert block.dtypes.tolist() == [np.dtype("float64")] * 2 and len(block._mgr.blocks) == 1
        pd.testing.assert_frame_equal(plan.conform(block), plan.conform(general))
    # anything else keeps pandas' own reading: a boolean, a text, a column the schema does not record as float
    for data, names in (([[True, 1.0]], ["x", "y"]), ([["1", 1.0]], ["x", "y"]), ([[1.0, 2.0]], ["x", "z"])):
        body = json.dumps({"dataframe_split": {"columns": names, "data": data}}).encode()
        frame, _ = parse(body, "application/json", ["x", "y"], floats)
        pd.testing.assert_frame_equal(frame, parse(body, "application/json", ["x", "y"])[0])


def test_the_monitors_sampled_bodies_read_again_as_one_table_hold_every_row_they_sent():
    from mlops_nb.deploy.serve.protocol import parse, tables

    rows = [{"pclass": 3, "sex": "female", "age": None, "fare": 7.25},
            {"pclass": 1, "sex": None, "age": 38.0, "fare": 71.28},
            {"pclass": 2, "sex": "male", "age": 4.5, "fare": 0.0}]
    columns = list(rows[0])
    split = {"columns": columns, "data": [list(r.values()) for r in rows]}
    csv_text = pd.DataFrame(rows).to_csv(index=False)
    requests = [
        (json.dumps({"dataframe_split": split}).encode(), "application/json"),
        (json.dumps({"dataframe_records": rows[:2]}).encode(), None),
        (json.dumps({"instances": rows[2:]}).encode(), "application/json; charset=utf-8"),
        (json.dumps({"inputs": {c: [r[c] for r in rows] for c in columns}}).encode(), "application/json"),
        (json.dumps({"dataframe_split": {**split, "index": [7, 8, 9]}}).encode(), "application/json"),
        (csv_text.encode(), "text/csv"),
        (b"{not json", "application/json"),  # no longer reads: skipped, the others kept
    ]
    made = tables(requests, columns)
    assert len(made) == 1
    table = made[0]
    # every row of every readable body, in its columns, each column with the dtype pandas infers for it
    expected = pd.concat([parse(body, kind, columns)[0] for body, kind in requests[:-1]], ignore_index=True)
    assert len(table) == 3 + 2 + 1 + 3 + 3 + 3 == len(expected)

    def as_rows(frame):
        return sorted(map(repr, frame.astype(object).where(frame.notna(), None).values.tolist()))

    assert as_rows(table) == as_rows(expected)
    assert table["pclass"].dtype.kind == "i" and table["age"].dtype.kind == "f" and table["fare"].dtype.kind == "f"
    assert table["sex"].isna().sum() == 5 and set(table["sex"].dropna()) == {"female", "male"}
    # bodies of another set of columns make a table of their own
    other = (json.dumps({"dataframe_records": [{"x": 1.5}]}).encode(), "application/json")
    assert sorted(len(t) for t in tables([requests[0], other], columns)) == [1, 3]
