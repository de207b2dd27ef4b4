"""The widgets in a real JupyterLab, driven from Chromium the way a person uses them.

A notebook records runs (five through the API, one through ``%mlops`` and ``%%stage`` cells), shows
``%mlops status`` *before* its stage cells and ``%mlops compare`` after them; the test opens it in
JupyterLab, runs it with Run > Run All Cells, then checks that the status view refreshed in place,
that the runs table rendered its rows, that clicking a header re-sorts and that ticking two runs shows
the diff. Screenshots of both widgets go to ``test-artifacts/``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from browser import artifact_path, cell_errors, chromium_page, jupyter_lab, open_notebook, run_all_cells
from notebook_helpers import code, markdown, notebook, write

import mlops_nb as mnb

API_RUNS = [("rf-shallow", "rf", 0.71), ("rf-deep", "rf", 0.83), ("lr-base", "lr", 0.78),
            ("lr-strong", "lr", 0.88), ("gb-300", "gb", 0.92)]

CELLS = [
    markdown("# mlops-nb widgets\nFive runs through the API, one through the lifecycle stages."),
    code("%load_ext mlops_nb\nimport sys\nimport mlops_nb as mnb\nprint(sys.executable)"),
    code(
        f"for name, model, f1 in {API_RUNS!r}:\n"
        "    with mnb.start('demo', name=name) as run:\n"
        "        run.log_params({'model': model, 'depth': len(name), 'learning_rate': 0.1})\n"
        "        for step in range(5):\n"
        "            run.log_metric('f1', round(f1 - 0.1 * (4 - step) / 4, 4))\n"
        "        run.log_metric('accuracy', round(f1 + 0.03, 4))"
    ),
    code("%mlops start demo --name notebook-run\n%mlops require f1 >= 0.8 --target y"),
    code("%mlops status"),
    code(
        "%%stage data\n"
        "import pandas as pd\n"
        "from sklearn.datasets import make_classification\n"
        "features, labels = make_classification(n_samples=400, n_features=6, random_state=0)\n"
        "df = pd.DataFrame(features, columns=[f'x{i}' for i in range(6)])\n"
        "df['y'] = labels"
    ),
    code("%%stage features\nX = df.drop(columns='y')\ny = df['y']"),
    code("%%stage model\nfrom sklearn.linear_model import LogisticRegression\n"
         "clf = LogisticRegression(C=0.5).fit(X, y)"),
    code("%%stage validation\nfrom sklearn.metrics import f1_score\nf1 = float(f1_score(y, clf.predict(X)))\nf1"),
    code("%mlops compare demo"),
]


def row_names(page) -> list[str]:
    return page.evaluate(
        "() => [...document.querySelectorAll('.mnb-compare .mnb-cells')].map(row => row.querySelector('b')"
        ".textContent)")


def wait_for_names(page, expected: list[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while row_names(page) != expected:
        assert time.monotonic() < deadline, f"table rows {row_names(page)}, expected {expected}"
        page.wait_for_timeout(200)


def test_widgets_render_sort_and_diff_in_jupyterlab(tmp_path: Path):
    root = tmp_path / "lab"
    root.mkdir()
    store_path = root / "mlops.db"
    write(notebook(CELLS), root / "widgets.ipynb")

    with jupyter_lab(root, env={"MLOPS_NB_STORE": str(store_path)}) as lab, chromium_page() as page:
        open_notebook(page, lab, "widgets.ipynb")
        run_all_cells(page)
        assert not cell_errors(page), cell_errors(page)
        # The kernel JupyterLab started runs this interpreter (the private kernelspec of browser.py).
        first_output = page.locator(".jp-CodeCell").first.locator(".jp-OutputArea-output").first.inner_text()
        assert first_output.strip() == sys.executable

        # The status view was shown before the stages ran and refreshed in place as they did.
        status = page.locator(".mnb-status-widget")
        status.wait_for()
        assert status.count() == 1
        for stage in ("data", "features", "model", "validation"):
            status.locator(f'[title="{stage}: ok"]').wait_for()
        assert status.locator('[title="tuning: not run"]').count() == 1
        assert "passed (" in status.inner_text()
        page.set_viewport_size({"width": 1440, "height": 2400})  # room for a whole widget in the notebook
        status.scroll_into_view_if_needed()
        status.screenshot(path=artifact_path("status-widget.png"))
        page.set_viewport_size({"width": 1440, "height": 1000})

        # The runs table: one row per run of the project, newest first.
        compare = page.locator(".mnb-compare")
        compare.locator(".mnb-row").first.wait_for()
        frame = mnb.runs("demo", store=store_path)
        assert len(frame) == 6
        newest_first = frame.sort_values("run_id", ascending=False)["name"].tolist()
        wait_for_names(page, newest_first)
        assert compare.locator(".mnb-row").count() == 6
        assert "page 1 of 1" in compare.locator(".mnb-pager-label").inner_text()

        # Clicking a header sorts by it; clicking again reverses.
        by_f1 = frame.sort_values("metrics.f1")["name"].tolist()
        f1_header = compare.locator("button.mnb-sort-metrics-f1")
        f1_header.click()
        wait_for_names(page, by_f1)
        assert f1_header.inner_text().strip().endswith("▲")
        f1_header.click()
        wait_for_names(page, by_f1[::-1])

        # Ticking two runs shows their diff.
        boxes = compare.locator(".mnb-row-select input[type=checkbox]")
        boxes.nth(0).check()
        boxes.nth(1).check()
        diff = compare.locator(".mnb-diff")
        diff.get_by_text("Diff of 2 runs").wait_for()
        text = diff.inner_text()
        first, second = by_f1[::-1][:2]
        assert first in text and second in text
        assert "Params" in text and "Metrics" in text and "model" in text
        compare.locator(".mnb-history-chart svg polyline").first.wait_for()
        page.screenshot(path=artifact_path("jupyterlab-widgets.png"))
        page.set_viewport_size({"width": 1440, "height": 2400})
        compare.scroll_into_view_if_needed()
        compare.screenshot(path=artifact_path("compare-widget.png"))
