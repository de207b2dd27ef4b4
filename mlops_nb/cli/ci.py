"""``mlops-nb ci init``: write a small CI workflow (GitHub Actions, GitLab CI) that installs the
project, runs ``mlops-nb check`` on the notebooks a change touched, keeps the reports and fails the
job when a check fails."""

from __future__ import annotations

from pathlib import Path

import click

from mlops_nb.cli.main import main

#: The notebooks a change touched (against BASE, or all of them when BASE is unknown), each checked;
#: the reports go to mlops-check/ and the job fails with the last failing check's exit status.
CHECK_SCRIPT = """\
mkdir -p mlops-check
if git cat-file -e "$BASE^{commit}" 2>/dev/null; then
  git diff --name-only --diff-filter=AM "$BASE" HEAD -- '*.ipynb' > mlops-check/notebooks.txt
else
  git ls-files '*.ipynb' > mlops-check/notebooks.txt
fi
status=0
while read -r nb; do
  out="mlops-check/$(echo "$nb" | tr '/ ' '__')"
  mlops-nb check "$nb" --report "$out.md" --junit "$out.xml" || status=$?
done < mlops-check/notebooks.txt
exit $status
"""

INSTALL = """\
python -m pip install --upgrade pip
if [ -f requirements.txt ]; then pip install -r requirements.txt; fi
if [ -f pyproject.toml ] || [ -f setup.py ]; then pip install -e .; fi
pip install mlops-nb
"""

HEADER = """\
# Written by `mlops-nb ci init`. On every change to a notebook, `mlops-nb check` replays it headless
# and judges it: every stage runs, the requirement gate passes, no integrity problem, and the
# primary metric is not worse than the champion's (the registry in mlops.db beside the notebook,
# when you commit one). The Markdown and JUnit reports are kept as artifacts. Edit freely.
"""


def _block(text: str, indent: int) -> str:
    pad = " " * indent
    return "".join(f"{pad}{line}\n" if line else "\n" for line in text.splitlines())


GITHUB = HEADER + f"""\
name: mlops-nb check
"on":
  pull_request:
    paths: ["**.ipynb"]
  push:
    paths: ["**.ipynb"]
jobs:
  check:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
        with:
          fetch-depth: 0
      - uses: actions/setup-python@v5
        with:
          python-version: "3.11"
      - name: Install the project
        run: |
{_block(INSTALL, 10)}\
      - name: Check the notebooks that changed
        env:
          BASE: ${{{{ github.event.pull_request.base.sha || github.event.before }}}}
        run: |
{_block(CHECK_SCRIPT, 10)}\
      - name: Upload the reports
        if: always()
        uses: actions/upload-artifact@v4
        with:
          name: mlops-nb-check
          path: mlops-check/
"""

GITLAB = HEADER + f"""\
mlops-nb-check:
  image: python:3.11
  variables:
    GIT_DEPTH: "0"
  rules:
    - changes: ["**/*.ipynb"]
  script:
    - |
{_block(INSTALL, 6)}\
    - export BASE="${{CI_MERGE_REQUEST_DIFF_BASE_SHA:-$CI_COMMIT_BEFORE_SHA}}"
    - |
{_block(CHECK_SCRIPT, 6)}\
  artifacts:
    when: always
    paths:
      - mlops-check/
    reports:
      junit: mlops-check/*.xml
"""

FILES = {"github": (Path(".github") / "workflows" / "mlops-nb-check.yml", GITHUB),
         "gitlab": (Path(".gitlab-ci.yml"), GITLAB)}


@main.group(short_help="Continuous integration: write a workflow that runs `mlops-nb check`.")
def ci() -> None:
    """Continuous integration for notebooks recorded by mlops-nb."""


@ci.command(name="init", short_help="Write a CI workflow that checks the notebooks a change touched.")
@click.option("--github", is_flag=True, help="Write .github/workflows/mlops-nb-check.yml (the default).")
@click.option("--gitlab", is_flag=True, help="Write .gitlab-ci.yml.")
@click.option("--dir", "folder", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="The repository's root.")
@click.option("--force", is_flag=True, help="Replace a workflow file that exists.")
def init(github: bool, gitlab: bool, folder: Path, force: bool) -> None:
    """Write a workflow that installs the project, runs `mlops-nb check` on every notebook the change
    added or modified, uploads the Markdown and JUnit reports, and fails the job when a check fails.

    \b
    Examples:
      mlops-nb ci init
      mlops-nb ci init --gitlab
    """
    chosen = [name for name, wanted in (("github", github), ("gitlab", gitlab)) if wanted] or ["github"]
    for name in chosen:
        path = folder / FILES[name][0]
        if path.exists() and not force:
            raise click.ClickException(f"{path} exists; add --force to replace it, or merge the job by hand")
    for name in chosen:
        relative, text = FILES[name]
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        click.echo(f"wrote {path}")
