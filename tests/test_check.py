"""`mlops-nb check`: real notebooks executed headless in a real kernel by the real CLI, judged against
the requirement and the champion of an earlier run, with Markdown, JUnit and JSON reports; bad input
refused in one line with its own exit code and nothing written; `ci init`; `%mlops check`."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from notebook_helpers import code, notebook, write

from mlops_nb.tracking.judgement import OUTCOMES

EXPECTED = Path(__file__).parent / "expected" / "check_passing.md"
CLI = [str(Path(sys.executable).parent / "mlops-nb")]


def iris_notebook(*, depth: int = 2, threshold: float = 0.6, rows: str = "", data_extra: str = "",
                  features: str = "X = df.drop(columns='target')\ny = df['target']", register: bool = False,
                  model_extra: str = ""):
    cells = [
        "%load_ext mlops_nb",
        f"%mlops start iris\n%mlops require accuracy >= {threshold} --target target",
        f"%%stage data\nfrom sklearn.datasets import load_iris\ndf = load_iris(as_frame=True).frame{rows}{data_extra}",
        f"%%stage features\n{features}",
        f"%%stage model\n{model_extra}from sklearn.tree import DecisionTreeClassifier\n"
        f"clf = DecisionTreeClassifier(max_depth={depth}, random_state=0).fit(X, y)",
        "%%stage validation\nfrom sklearn.metrics import accuracy_score\naccuracy = accuracy_score(y, clf.predict(X))",
    ]
    if register:
        cells.append("%mlops register clf --name iris")
        # what a check must not do: rewrite the package cron and the servers use, or move the champion
        cells.append("%mlops export iris --to deploy/iris\n%mlops promote iris 1")
    return notebook(cells)


def _command(args, cwd: Path) -> dict:
    env = {**os.environ}
    env.pop("MLOPS_NB_STORE", None)
    return {"args": [*CLI, "check", *map(str, args)], "cwd": cwd, "env": env}


def check(*args, cwd: Path, timeout: int = 240) -> subprocess.CompletedProcess:
    return subprocess.run(**_command(args, cwd), capture_output=True, text=True, timeout=timeout, check=False)


def check_all(commands: dict[str, tuple], cwd: Path, timeout: int = 240) -> dict[str, subprocess.CompletedProcess]:
    """Run several checks at once (each its own kernel): the suite waits for the slowest, not for the sum."""
    started = {name: subprocess.Popen(**_command(args, cwd), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True) for name, args in commands.items()}
    done = {}
    for name, process in started.items():
        out, err = process.communicate(timeout=timeout)
        done[name] = subprocess.CompletedProcess(process.args, process.returncode, out, err)
    return done


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def shuffled_notebook():
    """The notebook as a scripted edit left it: the data cell again after the model (everything after
    it stale), and an outside cell between features and model that narrows X."""
    nb = iris_notebook(depth=3)
    again = copy.deepcopy(nb.cells[2])
    again.id = "data-again"
    nb.cells.insert(5, again)
    nb.cells.insert(4, code("X = X[['petal length (cm)', 'petal width (cm)']]"))
    return nb


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One store: a baseline run registers the champion (v1); then, at once, a better notebook, a
    worse one, one whose gate fails, one with a failing features cell, one run out of order and
    one that runs out of time are checked against it."""
    folder = tmp_path_factory.mktemp("check")
    store = folder / "mlops.db"
    write(iris_notebook(depth=2, rows=".iloc[:140]", register=True), folder / "baseline.ipynb")
    baseline = check("baseline.ipynb", "--store", store, cwd=folder)
    write(iris_notebook(depth=3, data_extra="\ndf['petal ratio'] = df['petal length (cm)'] / df['petal width (cm)']"),
          folder / "passing.ipynb")
    write(iris_notebook(depth=1), folder / "worse.ipynb")
    write(iris_notebook(depth=1, threshold=0.99), folder / "gate.ipynb")
    write(iris_notebook(features="X = df.drop(columns='no such column')"), folder / "broken.ipynb")
    write(shuffled_notebook(), folder / "shuffled.ipynb")
    slow = iris_notebook()
    slow.cells[2].source = "%%stage data\nimport time\ntime.sleep(120)"
    write(slow, folder / "slow.ipynb")
    # run 2, before the others start: its report is compared with a stored file naming run ids
    passing = check("passing.ipynb", "--store", store, "--report", "report.md", "--junit", "junit.xml", cwd=folder)
    results = check_all({
        "worse": ("worse.ipynb", "--store", store, "--json"),
        "gate": ("gate.ipynb", "--store", store, "--against", "none", "--junit", "gate.xml"),
        "broken": ("broken.ipynb", "--store", store, "--report", "broken.md"),
        "shuffled": ("shuffled.ipynb", "--store", store, "--json"),
    }, folder)
    results["slow"] = check("slow.ipynb", "--store", store, "--timeout", "8", "--json", cwd=folder)
    return {"folder": folder, "store": store, "baseline": baseline, "passing": passing, **results}


def masked(text: str, folder: Path) -> str:
    """The report with the things that change between executions masked: times and the temporary folder."""
    text = text.replace(str(folder), "<folder>")
    return re.sub(r"(<0\.01 s|\d+(\.\d+)? s|\d+m \d\ds|\d+h \d\dm)", "<time>", text)


def test_a_passing_notebook_exits_0_with_a_report_of_every_section(shared):
    assert shared["baseline"].returncode == 0, shared["baseline"].stdout + shared["baseline"].stderr
    assert "this run holds the champion" in shared["baseline"].stdout
    assert not (shared["folder"] / "deploy").exists()  # the notebook's export cell was skipped, not run
    result = shared["passing"]
    assert result.returncode == 0, result.stdout + result.stderr
    report = (shared["folder"] / "report.md").read_text()
    for section in ("### Problems", "### Stages", "### Gate", "### Against champion iris v1 (run 1)",
                    "### Params that differ", "### Data that changed", "### Stage sources that changed",
                    "### Integrity"):
        assert section in report
    assert "| clf.max_depth | 3 | 2 |" in report
    assert "| data: df | changed | 140 → 150 | petal ratio |" in report
    assert "+df['petal ratio']" in report and "-clf = DecisionTreeClassifier(max_depth=2" in report
    if os.environ.get("MLOPS_NB_UPDATE_EXPECTED"):
        EXPECTED.write_text(masked(report, shared["folder"]))
    assert masked(report, shared["folder"]) == EXPECTED.read_text()


def test_the_junit_report_has_a_case_per_stage_and_one_for_the_gate(shared):
    root = ET.parse(shared["folder"] / "junit.xml").getroot()
    cases = root.findall("./testsuite/testcase")
    assert [c.get("name") for c in cases if c.get("classname") == "stage"] == ["data", "features", "model",
                                                                               "validation"]
    assert [c.get("name") for c in cases if c.get("classname") == "gate"] == ["accuracy >= 0.6"]
    assert not root.findall(".//failure")


def test_the_same_run_gives_the_same_reports_byte_for_byte(shared):
    from mlops_nb.cli import check_report
    from mlops_nb.store import open_store
    from mlops_nb.tracking.comparison import check_view, resolve_against
    from mlops_nb.tracking.judgement import judge

    store = open_store(shared["store"], readonly=True)

    def render() -> tuple[str, bytes, str]:
        chosen = resolve_against(store, 2, "champion")
        judgement = judge(check_view(store, 2), check_view(store, chosen.run_id), margin=0.005,
                          against_label=chosen.label)
        return check_report.markdown(judgement), check_report.junit(judgement), check_report.json_text(judgement)

    assert render() == render()


def test_a_model_worse_than_the_champion_of_an_earlier_run_exits_42(shared):
    result = shared["worse"]
    assert result.returncode == OUTCOMES["worse"] == 42, result.stderr
    judgement = json.loads(result.stdout)
    assert judgement["comparison"]["label"] == "champion iris v1 (run 1)"
    assert judgement["comparison"]["worse"] and judgement["comparison"]["gain"] < -0.005
    assert judgement["gate"]["passed"]
    accuracy = next(m for m in judgement["metrics"] if m["key"] == "accuracy")
    assert accuracy["better"] == "other"
    # a wider margin forgives it: the judgement alone, on the recorded run
    from mlops_nb.store import open_store
    from mlops_nb.tracking.comparison import check_view
    from mlops_nb.tracking.judgement import judge

    store = open_store(shared["store"], readonly=True)
    forgiven = judge(check_view(store, judgement["run"]["id"]), check_view(store, 1), margin=0.5)
    assert forgiven["outcome"] == "passed" and forgiven["exit"] == 0


def test_a_failing_gate_exits_41(shared):
    result = shared["gate"]
    assert result.returncode == 41, result.stdout + result.stderr
    assert "gate failed: requirement accuracy >= 0.99: got 0.6667" in result.stdout
    failures = ET.parse(shared["folder"] / "gate.xml").getroot().findall(".//testcase[@classname='gate']/failure")
    assert len(failures) == 1


def test_a_failing_cell_in_features_exits_40_naming_the_cell_stage_and_error(shared):
    result = shared["broken"]
    assert result.returncode == 40, result.stdout + result.stderr
    assert "cell 4 (stage features) failed: KeyError:" in result.stdout
    report = (shared["folder"] / "broken.md").read_text()
    assert "| features | error ❌: KeyError:" in report
    assert "| model | not run ❌ | 0 | – |" in report


def test_a_notebook_run_out_of_order_by_a_scripted_edit_exits_43(shared):
    result = shared["shuffled"]
    assert result.returncode == 43, result.stdout + result.stderr
    judgement = json.loads(result.stdout)
    blocking = [w for w in judgement["warnings"] if w["blocking"]]
    assert {w["kind"] for w in blocking} == {"stale", "unstaged_cells"}
    assert any("they changed X, which later stages used" in w["message"] for w in blocking)
    assert {s["stage"]: s["status"] for s in judgement["stages"]}["model"] == "stale"


def test_a_notebook_that_runs_out_of_time_exits_45(shared):
    result = shared["slow"]
    assert result.returncode == 45, result.stdout + result.stderr
    judgement = json.loads(result.stdout)
    assert judgement["problems"][0]["message"].startswith("the notebook timed out after 8.0 s in cell 3 (stage data)")
    assert {s["stage"]: s["status"] for s in judgement["stages"]}["data"] == "timed out"


# -- bad input: one line, its own exit code, nothing written ---------------------------------------


@pytest.mark.parametrize("case, code", [
    ("not a notebook", 46), ("no load_ext", 47), ("no stage", 48), ("unknown run", 1), ("report path", 49),
])
def test_bad_input_is_one_line_with_its_own_code_and_writes_nothing(shared, case, code):
    folder = shared["folder"]
    args = ["passing.ipynb"]
    if case == "not a notebook":
        (folder / "notes.txt").write_text("not json at all")
        args = ["notes.txt"]
    elif case == "no load_ext":
        write(notebook(["%%stage data\nx = 1"]), folder / "plain.ipynb")
        args = ["plain.ipynb"]
    elif case == "no stage":
        write(notebook(["%load_ext mlops_nb", "x = 1"]), folder / "nostage.ipynb")
        args = ["nostage.ipynb"]
    elif case == "unknown run":
        args += ["--against", "999"]
    else:
        (folder / "a-file").write_text("")
        args += ["--report", "a-file/report.md"]
    before = digest(shared["store"])
    result = check(*args, "--store", shared["store"], cwd=folder, timeout=60)
    assert result.returncode == code, result.stdout + result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert digest(shared["store"]) == before


# -- ci init -------------------------------------------------------------------------------------------


def test_ci_init_writes_workflows_that_parse_with_the_expected_job_and_steps(tmp_path):
    result = subprocess.run([*CLI, "ci", "init", "--github", "--gitlab", "--dir", str(tmp_path)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    github = yaml.safe_load((tmp_path / ".github" / "workflows" / "mlops-nb-check.yml").read_text())
    assert set(github) == {"name", "on", "jobs"}
    steps = github["jobs"]["check"]["steps"]
    assert [s.get("uses", s.get("name")) for s in steps] == [
        "actions/checkout@v4", "actions/setup-python@v5", "Install the project", "Check the notebooks that changed",
        "actions/upload-artifact@v4"]
    assert "mlops-nb check" in steps[3]["run"] and "exit $status" in steps[3]["run"]
    assert steps[4]["if"] == "always()"
    gitlab = yaml.safe_load((tmp_path / ".gitlab-ci.yml").read_text())
    job = gitlab["mlops-nb-check"]
    assert any("mlops-nb check" in line for line in job["script"])
    assert job["artifacts"]["reports"]["junit"] == "mlops-check/*.xml"
    again = subprocess.run([*CLI, "ci", "init", "--dir", str(tmp_path)], capture_output=True, text=True, check=False)
    assert again.returncode == 1 and "--force" in again.stderr


# -- %mlops check: the same judgement, as a widget, without running again -------------------------------


def test_mlops_check_shows_the_judgement_of_the_current_run(shell, capsys):
    shell.lifecycle(threshold=0.5)
    capsys.readouterr()
    shell.run("%mlops check --against none")
    line = capsys.readouterr().out.splitlines()[0]
    assert line == "mlops: check of run 1: passed (exit 0)"
    from shell_helpers import DATA

    shell.run(DATA)  # data again after validation: every later stage is stale
    capsys.readouterr()
    shell.run("%mlops check")
    out = capsys.readouterr().out.splitlines()[0]
    assert out.startswith("mlops: check of run 1: integrity (exit 43)") and len(out) < 160
