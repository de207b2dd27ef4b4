"""The Jupyter Server extension behind the JupyterLab sidebar: read-only JSON over the store.

Routes, all ``GET``, all under ``<base_url>/mlops-nb/api/`` and all authenticated:

``projects``
    ``{"store": {"path", "exists"}, "projects": [{"project", "runs", "last_run"}]}``
``projects/<project>/runs?where=&sort=&order=&limit=&offset=``
    one page of the project's runs (:meth:`mlops_nb.store.Store.runs_page`) plus ``metrics``,
    the metric keys the project has (for a metric picker)
``runs/<run_id>``
    one run's view (:func:`mlops_nb.tracking.views.run_view`, what the status widget and
    ``mlops-nb show`` render too): params, metrics, tags, requirement, gates, integrity warnings and
    its stages in lifecycle order, each with its ``state`` and its attempts
``registry``
    ``{"models": [{"name", "versions": [...], "aliases": {alias: version}}]}``

The routes never change the store: it is opened read-only (SQLite refuses writes on the
connection), and a run whose process is gone is shown as ``interrupted`` without being written.
Every route also takes ``store=PATH``. The store is ``MlopsNb.store``
(default ``mlops.db``) resolved against the server's root directory; any path (setting or
parameter) that resolves outside the root, through ``..``, an absolute path or a symlink, is
refused. A store file that does not exist yet is an empty store: the server never creates one.
Malformed parameters answer 400 with ``{"message": ...}`` naming the fix.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import tornado.web
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from traitlets import Unicode
from traitlets.config import Configurable

from mlops_nb import __version__  # noqa: F401  (shown by `jupyter server extension list`)
from mlops_nb import store as store_module
from mlops_nb.errors import FilterError, MlopsError, RunNotFound, StoreError
from mlops_nb.format import json_safe
from mlops_nb.tracking.views import GONE, run_view

API_ROOT = "mlops-nb/api"
MAX_LIMIT = 500
DEFAULT_LIMIT = 50
#: The largest integer SQLite stores: a larger offset or run id names nothing (and would overflow).
MAX_INTEGER = 2**63 - 1


class MlopsNb(Configurable):
    """Settings of the mlops-nb server extension (``c.MlopsNb.store`` or ``--MlopsNb.store=``)."""

    store = Unicode(
        store_module.DEFAULT_FILENAME,
        help="The store the sidebar reads: a path relative to the server's root directory (or an absolute "
        "path inside it). Paths that resolve outside the root are refused.",
    ).tag(config=True)


class ApiError(tornado.web.HTTPError):
    """An error answered as ``{"message": ...}`` with ``status``."""

    def __init__(self, status: int, message: str):
        super().__init__(status, "%s", message)
        self.message = message


def resolve_store(setting: str, root: str | os.PathLike) -> Path:
    """The real path of the store ``setting`` names, which must lie inside ``root``.

    A relative ``setting`` is taken from ``root``; symlinks are followed (in the root and in the
    setting) before the check, so a link pointing out of the root is refused like ``../x.db``.
    Raises :class:`StoreError` naming the setting, where it leads and the fix.
    """
    if not setting or "\x00" in setting:
        raise StoreError(f"the store path {setting!r} is empty or invalid; give a file path such as mlops.db")
    real_root = Path(root).expanduser().resolve()
    candidate = Path(setting).expanduser()
    if not candidate.is_absolute():
        candidate = real_root / candidate
    real = candidate.resolve()
    if real == real_root or not real.is_relative_to(real_root):
        raise StoreError(
            f"the store path {setting!r} resolves to {real}, outside the server's root directory {real_root}; "
            f"use a path inside it, such as mlops.db"
        )
    return real


class _Handler(APIHandler):
    """Shared by every route: the store from the setting or ``?store=``, errors as JSON."""

    allowed_arguments: tuple[str, ...] = ("store",)

    @property
    def extension_config(self) -> MlopsNb:
        return self.settings["mlops_nb"]

    def check_arguments(self) -> None:
        # A bare number is JupyterLab's cache buster (ServerConnection.makeRequest adds one).
        unknown = sorted(key for key in self.request.query_arguments
                         if key not in self.allowed_arguments and not key.isdigit())
        if unknown:
            raise ApiError(400, f"unknown parameter {unknown[0]!r}; this route takes: "
                                f"{', '.join(self.allowed_arguments)}")

    def store_path(self) -> tuple[str, Path]:
        """The store setting in force (the ``store`` parameter, else ``MlopsNb.store``) and its real path."""
        requested = self.get_query_argument("store", None)
        setting = requested if requested not in (None, "") else self.extension_config.store
        root = self.settings["server_root_dir"]
        try:
            return setting, resolve_store(setting, root)
        except StoreError as exc:
            # A bad request parameter is the client's mistake; a bad setting is the server's.
            raise ApiError(400 if requested else 500, str(exc)) from None

    def open_store(self, path: Path) -> store_module.Store | None:
        """The open store at ``path``; None when no store exists there yet (never creates one)."""
        try:
            stat = path.stat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self.store_refused(f"cannot use the store path {path} ({exc.strerror})") from None
        opened_as = self.settings["mlops_nb_inodes"]
        if opened_as.get(path, (stat.st_dev, stat.st_ino)) != (stat.st_dev, stat.st_ino):
            store_module.close_all()  # the file was replaced (deleted and started again)
            opened_as.clear()
        opened_as[path] = (stat.st_dev, stat.st_ino)
        try:
            return store_module.open_store(path, readonly=True)
        except StoreError as exc:
            raise self.store_refused(str(exc)) from None

    def store_refused(self, message: str) -> ApiError:
        # A file the request named is the client's mistake; the configured one is the server's.
        requested = self.get_query_argument("store", None) not in (None, "")
        return ApiError(400 if requested else 500, message)

    def int_argument(self, name: str, default: int, low: int, high: int | None = None) -> int:
        text = self.get_query_argument(name, None)
        if text in (None, ""):
            return default
        digits = text.removeprefix("-")
        if not (digits.isascii() and digits.isdigit()) or len(digits) > 19 or int(digits) > MAX_INTEGER:
            # Only ASCII digits (int() also takes "١", "1_0" and " 1"), at most SQLite's largest integer.
            raise ApiError(400, f"{name}={text[:40]!r} is not a whole number from 0 to {MAX_INTEGER}")
        value = int(text)  # ASCII digits, with a sign: out of range below, said so
        if value < low or (high is not None and value > high):
            bounds = f"from {low} to {high}" if high is not None else f"{low} or more"
            raise ApiError(400, f"{name}={value} is out of range; use {bounds}")
        return value

    def reply(self, payload: dict[str, Any]) -> None:
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(json_safe(payload), allow_nan=False))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(error, ApiError):
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps({"message": error.message, "reason": self._reason}))
            return
        super().write_error(status_code, **kwargs)


class ProjectsHandler(_Handler):
    @tornado.web.authenticated
    def get(self) -> None:
        self.check_arguments()
        setting, path = self.store_path()
        opened = self.open_store(path)
        self.reply({
            "store": {"path": setting, "exists": opened is not None},
            "projects": opened.projects() if opened else [],
        })


class RunsHandler(_Handler):
    allowed_arguments = ("store", "where", "sort", "order", "limit", "offset")

    @tornado.web.authenticated
    def get(self, project: str) -> None:
        self.check_arguments()
        limit = self.int_argument("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        offset = self.int_argument("offset", 0, 0)
        order = self.get_query_argument("order", "desc")
        if order not in ("asc", "desc"):
            raise ApiError(400, f"order={order!r} is not a sort order; use asc or desc")
        sort = self.get_query_argument("sort", "") or "run_id"
        where = self.get_query_argument("where", "").strip() or None
        _, path = self.store_path()
        opened = self.open_store(path)
        if opened is None or not opened.has_project(project):
            raise ApiError(404, f"no project {project!r} in the store; the projects are listed at {API_ROOT}/projects")
        try:
            page = opened.runs_page(project, where=where, sort=sort, descending=order == "desc",
                                    limit=limit, offset=offset)
        except FilterError as exc:
            raise ApiError(400, str(exc)) from None
        for run in page["runs"]:
            if run["status"] == "running" and store_module.process_gone(opened.run(run["run_id"])):
                run["status"] = "interrupted"  # as the run's view shows it; the next writer records it
                run["error"] = GONE
        self.reply({
            "project": project, "where": where or "", "sort": sort, "order": order, "limit": limit,
            "offset": offset, "total": page["total"], "metrics": opened.known_keys(project)["metrics"],
            "runs": page["runs"],
        })


class RunHandler(_Handler):
    @tornado.web.authenticated
    def get(self, run_id: str) -> None:
        self.check_arguments()
        if not (run_id.isascii() and run_id.isdigit()) or len(run_id) > 19 or int(run_id) > MAX_INTEGER:
            # ASCII digits only: str.isdigit() and int() accept "١" (Arabic-Indic one) as run 1.
            raise ApiError(400, f"{run_id[:40]!r} is not a run id; run ids are whole numbers such as 3")
        _, path = self.store_path()
        opened = self.open_store(path)
        if opened is None:
            raise ApiError(404, f"no run {run_id}: there is no store at {path} yet")
        try:
            self.reply(run_view(opened, int(run_id)))
        except RunNotFound as exc:
            raise ApiError(404, str(exc)) from None


class RegistryHandler(_Handler):
    @tornado.web.authenticated
    def get(self) -> None:
        self.check_arguments()
        _, path = self.store_path()
        opened = self.open_store(path)
        models: dict[str, dict[str, Any]] = {}
        for row in opened.model_versions() if opened else []:
            model = models.setdefault(row["name"], {"name": row["name"], "versions": [], "aliases": {}})
            model["versions"].append({key: row[key] for key in (
                "version", "run_id", "class", "created", "description", "aliases")})
            model["aliases"].update({alias: row["version"] for alias in row["aliases"]})
        for model in models.values():
            model["versions"].reverse()  # newest first
        self.reply({"models": list(models.values())})


def handlers(base_url: str) -> list[tuple[str, type[_Handler]]]:
    def route(pattern: str) -> str:
        return url_path_join(base_url, API_ROOT, pattern)

    return [
        (route("projects"), ProjectsHandler),
        (route("projects/([^/]+)/runs"), RunsHandler),
        (route("runs/([^/]+)"), RunHandler),
        (route("registry"), RegistryHandler),
    ]


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "mlops_nb.server"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Register the routes; say in the log which store the sidebar reads, or why it cannot."""
    config = MlopsNb(parent=serverapp)
    web_app = serverapp.web_app
    web_app.settings["mlops_nb"] = config
    web_app.settings["mlops_nb_inodes"] = {}
    web_app.add_handlers(".*$", handlers(web_app.settings["base_url"]))
    try:
        path = resolve_store(config.store, serverapp.root_dir)
    except MlopsError as exc:
        serverapp.log.error("mlops-nb: %s (set c.MlopsNb.store)", exc)
    else:
        serverapp.log.info("mlops-nb: the sidebar reads the store %s", path)
