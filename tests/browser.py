"""Browser tests' plumbing: a real JupyterLab server and a Playwright page in Debian's Chromium.

Nothing here downloads a browser: Playwright drives ``/usr/bin/chromium`` (``CHROMIUM``) with the flags
of DESIGN.md section 7. Use from a test module::

    from browser import chromium_page, jupyter_lab, open_notebook, run_all_cells

    def test_something(tmp_path):
        with jupyter_lab(tmp_path) as lab, chromium_page() as page:
            open_notebook(page, lab, "demo.ipynb")
            run_all_cells(page)

- :func:`require_browser` fails a test when Chromium or Playwright is missing, whatever ``$CI`` says:
  the test command installs both, so a missing browser is a broken machine, not a reason to pass.
- :func:`jupyter_lab` starts ``jupyter lab`` on 127.0.0.1 with a random token and a free port, in an
  isolated Jupyter config/runtime/settings/workspaces, with a private ``python3`` kernelspec that runs
  *this* interpreter, and the JupyterLab extension this checkout built (``mlops_nb/labextension``)
  ahead of any installed copy; it waits until the server answers and shuts it (and its kernels) down after.
  :class:`LabServer` gives the URLs, authenticated REST calls (``api``) and the server's log.
- :func:`chromium_page` is a Playwright page with generous timeouts; console errors are collected in
  ``page.console_errors``.
- :func:`open_notebook` (which waits, through :func:`wait_for_kernel`, until the server reports the
  notebook's kernel idle and connected), :func:`menu`, :func:`run_all_cells` and
  :func:`wait_until_idle` drive JupyterLab the way a person does: the URL, the menu bar, the kernel
  indicator. :func:`cell_errors` returns the error outputs on the page.
- :func:`artifact_path` names a file under ``test-artifacts/`` (git-ignored) for screenshots.

A server extension test can use :func:`jupyter_lab` alone: ``lab.api("my/route")`` sends the token,
``lab.api("my/route", authenticated=False)`` checks that the route refuses requests without one.

JupyterLab on two cores takes tens of seconds to first paint and to start a kernel: every wait here is
long on purpose.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
#: How long to wait for the server to answer, a page to paint, a notebook to run (seconds).
SERVER_TIMEOUT_S = 180
PAGE_TIMEOUT_S = 120
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
#: The extension as this checkout built it (``jlpm build`` in ``extension/``, or ``pip install``).
BUILT_EXTENSION = Path(__file__).resolve().parent.parent / "mlops_nb" / "labextension"


#: JavaScript that starts timing the sidebar's first render of runs; ``await window.mlopsFirstRender``
#: gives the milliseconds (used by the first-render test and by benchmarks/bench_sidebar.py).
WATCH_FIRST_RENDER = """() => {
    const t0 = performance.now();
    window.mlopsFirstRender = new Promise(resolve => {
        const done = () => document.querySelectorAll('#mlops-nb-sidebar .mlops-run[data-run-id]').length > 0;
        const observer = new MutationObserver(() => {
            if (done()) { observer.disconnect(); resolve(performance.now() - t0); }
        });
        observer.observe(document.body, { childList: true, subtree: true });
    });
}"""


def require_browser() -> None:
    """Fail unless Chromium and Playwright are both available (never skip: a suite that passes without
    its browser tests has tested less than it says)."""
    problems = []
    if not os.access(CHROMIUM, os.X_OK):
        problems.append(f"{CHROMIUM} is missing (apt-get install chromium); Playwright must not download one")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problems.append("the Python package playwright is not installed (pip install playwright)")
    if problems:
        pytest.fail("browser test needs a browser: " + "; ".join(problems)
                    + " (scripts/setup.sh test installs both)")


def artifact_path(name: str) -> Path:
    """Where a test saves a screenshot or a log for people to look at (``test-artifacts/``, git-ignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / name


# -- the server ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def private_kernels(folder: Path) -> Path:
    """A Jupyter data folder whose only kernelspec, ``python3``, runs ``sys.executable``."""
    spec = folder / "kernels" / "python3"
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }))
    return folder


@dataclass
class LabServer:
    """A running ``jupyter lab``: its base ``url``, ``token``, ``root_dir``, process and log file."""

    url: str
    token: str
    root_dir: Path
    process: subprocess.Popen
    log_path: Path

    def lab_url(self, path: str = "") -> str:
        """The page of ``path`` (a file under ``root_dir``; empty for the launcher), with the token."""
        tree = f"/tree/{path.lstrip('/')}" if path else ""
        return f"{self.url}/lab{tree}?token={self.token}"

    def api(self, path: str, *, method: str = "GET", body: Any = None, authenticated: bool = True,
            timeout: float = 30) -> tuple[int, Any]:
        """Call ``/<path>`` (e.g. ``api/status`` or a server extension's route); returns the HTTP status
        and the decoded JSON body (text when it is not JSON). ``authenticated=False`` omits the token."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}/{path.lstrip('/')}", data=data, method=method)
        if authenticated:
            request.add_header("Authorization", f"token {self.token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        text = raw.decode("utf-8", "replace")
        try:
            return status, json.loads(text) if text else None
        except ValueError:
            return status, text

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@contextmanager
def jupyter_lab(root_dir: Path, *, env: Mapping[str, str] | None = None, extra_args: Sequence[str] = (),
                settings: Mapping[str, Mapping[str, Any]] | None = None,
                timeout: float = SERVER_TIMEOUT_S) -> Iterator[LabServer]:
    """Run ``jupyter lab`` serving ``root_dir`` until the block ends.

    ``env``: extra environment for the server and its kernels (e.g. ``MLOPS_NB_STORE``).
    ``extra_args``: more command-line options. ``settings``: JupyterLab user settings by plugin id
    (``{"@jupyterlab/apputils-extension:notification": {"fetchNews": "false"}}``), on top of the
    defaults here, which keep news and update checks (and their pop-ups) out of the way.
    """
    root_dir = Path(root_dir)
    root_dir.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="mlops-nb-lab-"))
    user_settings = {
        "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
        **(settings or {}),
    }
    for plugin, values in user_settings.items():
        package, _, name = plugin.partition(":")
        target = home / "settings" / package / f"{name}.jupyterlab-settings"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(values))
    port, token = free_port(), secrets.token_hex(24)
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
        "--ServerApp.ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0",
        f"--ServerApp.token={token}", f"--ServerApp.root_dir={root_dir}",
        f"--LabApp.user_settings_dir={home / 'settings'}", f"--LabApp.workspaces_dir={home / 'workspaces'}",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        *_this_checkouts_extension(home),
        *extra_args,
    ]
    full_env = {
        **os.environ,
        "JUPYTER_PATH": str(private_kernels(home / "data")),
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_DATA_DIR": str(home / "data-user"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    log_path = home / "jupyter-lab.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=root_dir, env=full_env, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_die_with_parent)
    server = LabServer(f"http://127.0.0.1:{port}", token, root_dir, process, log_path)
    try:
        _wait_until_up(server, timeout)
        yield server
    finally:
        _shut_down(server)
        shutil.rmtree(home, ignore_errors=True)


def _this_checkouts_extension(home: Path) -> list[str]:
    """Serve the extension this checkout built rather than the copy an install put in the
    environment's ``share/jupyter/labextensions`` (which may be another checkout's, or older): an
    extra labextensions folder comes first, and the first ``mlops-nb`` found wins."""
    if not (BUILT_EXTENSION / "package.json").exists():
        return []
    folder = home / "labextensions"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "mlops-nb").symlink_to(BUILT_EXTENSION, target_is_directory=True)
    return [f"--LabApp.extra_labextensions_path={folder}"]


def _die_with_parent() -> None:
    """In the server's process, before exec (Linux): get SIGTERM when the test process dies, so a test
    run killed by a timeout leaves no server behind (the server then stops its kernels)."""
    if sys.platform.startswith("linux"):
        import ctypes

        with suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _wait_until_up(server: LabServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with {server.process.returncode}:\n{server.log()[-4000:]}")
        try:
            status, _ = server.api("api/status", timeout=5)
            if status == 200:
                return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"jupyter lab did not answer within {timeout:.0f} s:\n{server.log()[-4000:]}")


def _shut_down(server: LabServer) -> None:
    """Ask the server to stop (it shuts its kernels down), then signal only the process we started."""
    process = server.process
    if process.poll() is None:
        with suppress(OSError, urllib.error.URLError):
            server.api("api/shutdown", method="POST", timeout=10)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


# -- the browser -----------------------------------------------------------------------------------


@contextmanager
def chromium_page(*, width: int = 1440, height: int = 1000, timeout: float = PAGE_TIMEOUT_S) -> Iterator[Any]:
    """A Playwright page in ``/usr/bin/chromium``; fails first when there is none (see :func:`require_browser`).

    ``page.console_errors`` collects the console's error messages and uncaught page errors.
    """
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": width, "height": height}, device_scale_factor=1)
            page = context.new_page()
            page.set_default_timeout(timeout * 1000)
            page.console_errors = []
            page.on("console", lambda message: message.type == "error" and page.console_errors.append(message.text))
            page.on("pageerror", lambda error: page.console_errors.append(str(error)))
            yield page
        finally:
            browser.close()


# -- JupyterLab, as a person drives it ------------------------------------------------------------


def open_notebook(page: Any, server: LabServer, path: str, *, timeout: float = PAGE_TIMEOUT_S) -> None:
    """Open ``path`` (under the server's root) and wait until its kernel is connected and idle."""
    page.goto(server.lab_url(path), wait_until="domcontentloaded", timeout=timeout * 1000)
    page.locator(".jp-NotebookPanel .jp-Notebook").first.wait_for(state="visible", timeout=timeout * 1000)
    wait_for_kernel(page, server, path, timeout=timeout)


def wait_for_kernel(page: Any, server: LabServer, path: str, *, timeout: float = PAGE_TIMEOUT_S) -> None:
    """Wait until the server has a session for ``path`` whose kernel is idle with a client connected,
    and the page's kernel indicator says idle. (JupyterLab shows its indicator as idle before the kernel
    is connected; running cells then would open the "Select Kernel" dialog.)"""
    deadline = time.monotonic() + timeout
    while True:
        status, sessions = server.api("api/sessions")
        if status == 200 and any(
            s.get("path") == path and (s.get("kernel") or {}).get("execution_state") == "idle"
            and (s.get("kernel") or {}).get("connections", 0) >= 1
            for s in sessions or []
        ):
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"no idle, connected kernel for {path} after {timeout:.0f} s: {sessions}")
        dismiss_kernel_dialog(page)
        time.sleep(0.5)
    wait_until_idle(page, timeout=max(1.0, deadline - time.monotonic()))


def dismiss_kernel_dialog(page: Any) -> bool:
    """Accept JupyterLab's "Select Kernel" dialog (its preselected kernel) if it is open."""
    dialog = page.locator(".jp-Dialog", has_text="Select Kernel")
    if dialog.count() and dialog.first.is_visible():
        dialog.first.locator(".jp-mod-accept").click()
        return True
    return False


def wait_until_idle(page: Any, *, timeout: float = PAGE_TIMEOUT_S) -> None:
    """Wait for the notebook's kernel indicator to say ``idle``."""
    page.locator('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator[data-status="idle"]') \
        .first.wait_for(state="attached", timeout=timeout * 1000)


def menu(page: Any, *path: str) -> None:
    """Click through the menu bar: ``menu(page, "Run", "Run All Cells")``."""
    first, *rest = path
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(rf"^{re.escape(first)}$")).first.click()
    for label in rest:
        page.locator(".lm-Menu:visible .lm-Menu-itemLabel", has_text=re.compile(rf"^{re.escape(label)}$")) \
            .first.click()


_ALL_RAN = """() => {
    const prompts = [...document.querySelectorAll(
        '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt')];
    return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
}"""


def run_all_cells(page: Any, *, timeout: float = PAGE_TIMEOUT_S * 3) -> None:
    """Run > Run All Cells, then wait until every code cell has run (a number in each prompt) and the
    kernel is idle. A "Select Kernel" dialog, should JupyterLab still open one, is accepted."""
    menu(page, "Run", "Run All Cells")
    deadline = time.monotonic() + timeout
    while not page.evaluate(_ALL_RAN):
        if time.monotonic() > deadline:
            prompts = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-InputPrompt").all_inner_texts()
            raise TimeoutError(f"cells still not run after {timeout:.0f} s; prompts: {prompts}")
        dismiss_kernel_dialog(page)
        page.wait_for_timeout(250)
    wait_until_idle(page, timeout=max(1.0, deadline - time.monotonic()))


def cell_errors(page: Any) -> list[str]:
    """The text of every error output shown in the notebook."""
    return page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").all_inner_texts()
