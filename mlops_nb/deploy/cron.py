"""Scheduled retraining in the user's crontab: install, list and remove (python-crontab).

Each package gets at most one line, tagged with the comment ``mlops-nb retrain <package root>`` so
that mlops-nb finds its own lines and never touches anyone else's. The line is the one export
writes to ``crontab.txt`` (:func:`mlops_nb.deploy.schedule.cron_command`): cron starts jobs with a bare
environment (``PATH=/usr/bin:/bin``, no virtual environment, no ``MLOPS_NB_STORE``), so it changes
into the package root, sets the store, runs ``python -P -m mlops_nb retrain ROOT`` with this interpreter's absolute
path, and appends everything the job prints to ``<package>-retrain.log`` beside the package.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from mlops_nb.deploy.layout import package_root
from mlops_nb.deploy.schedule import check_line_value, cron_command, next_run_times
from mlops_nb.deploy.verify import read_manifest
from mlops_nb.errors import MlopsError, PackageError

TAG = "mlops-nb retrain"


@dataclass(frozen=True)
class CronEntry:
    """One mlops-nb line of the crontab."""

    package: Path
    schedule: str
    command: str
    enabled: bool

    def next_runs(self, count: int = 1) -> list[datetime]:
        return next_run_times(self.schedule, count)

    def __str__(self) -> str:
        state = "" if self.enabled else " (disabled)"
        return f"{self.schedule}  {self.package}{state}"


def _crontab(tabfile: str | os.PathLike | None, user: str | None = None) -> Any:
    from crontab import CronTab

    if tabfile is not None:
        path = Path(tabfile)
        return CronTab(tabfile=str(path)) if path.exists() else CronTab(tab="")
    if shutil.which("crontab") is None:
        raise MlopsError("the `crontab` command is not installed: install cron (Debian: apt-get install cron) "
                         "and start it, or use the exported airflow_dag.py / cronjob.yaml")
    if user is not None:
        _check_user(user)
    try:
        return CronTab(user=user or True)
    except Exception as exc:
        raise MlopsError(f"cannot read {_whose(user)} crontab: {exc}") from None


def _check_user(user: str) -> None:
    """Another account's crontab (``crontab -u``) is root's to edit, and the account must exist."""
    import pwd

    try:
        pwd.getpwnam(user)
    except KeyError:
        raise MlopsError(f"there is no user {user!r} on this machine: give an existing account to --user "
                         "(e.g. the service account that owns the package)") from None
    if os.geteuid() != 0:
        raise MlopsError(f"only root can edit the crontab of {user!r}: run the command as root (sudo), or as "
                         f"{user} without --user") from None


def _whose(user: str | None) -> str:
    return "your" if user is None else f"{user}'s"


def _write(tab: Any, tabfile: str | os.PathLike | None, user: str | None = None) -> None:
    try:
        tab.write(str(tabfile)) if tabfile is not None else tab.write()
    except Exception as exc:
        raise MlopsError(f"cannot write {_whose(user)} crontab: {exc}") from None


def _comment(root: Path) -> str:
    return f"{TAG} {root}"


def check_schedule(schedule: str) -> str:
    """``schedule`` when it is five cron fields that fire at some moment; otherwise
    :class:`PackageError` (exit 78) naming it ("0 3 31 2 *", February 31st, never comes)."""
    from mlops_nb.errors import ExportError

    check_line_value(schedule, "the schedule")
    try:
        next_run_times(schedule, 1)
    except ExportError as exc:
        raise PackageError(str(exc)) from None
    return schedule


def job_line(package_path: str | os.PathLike, *, schedule: str | None = None, store: str | os.PathLike | None = None,
             python: str | None = None) -> tuple[Path, str, str]:
    """``(root, schedule, command)`` of the cron line for a package: the schedule given (validated)
    or the one chosen at export; the store given or the one the package was exported from."""
    check_line_value(package_path, "the package path")
    check_line_value(store, "the store path")
    check_line_value(python, "the interpreter path")
    root = package_root(package_path)
    manifest = read_manifest(root)
    schedule = check_schedule((schedule or manifest.get("schedule") or "").strip())
    store_path = str(Path(store).expanduser().absolute()) if store else manifest["store"]
    log = manifest.get("log") or str(root.parent / f"{root.name}-retrain.log")
    return root, schedule, cron_command(root, store_path, manifest.get("data_source"), Path(log), python)


def install(package_path: str | os.PathLike, *, schedule: str | None = None, store: str | os.PathLike | None = None,
            python: str | None = None, tabfile: str | os.PathLike | None = None,
            user: str | None = None) -> CronEntry:
    """Install (or replace) the retraining line of a package in the user's crontab (or ``tabfile``)
    and return it. ``schedule``: a five-field cron expression (default: the export's). ``store``:
    the store to record in (default: the export's). ``python``: the interpreter (default: this one).
    ``user``: another account's crontab (root only), e.g. a service account the job should run as."""
    root, schedule, command = job_line(package_path, schedule=schedule, store=store, python=python)
    tab = _crontab(tabfile, user)
    tab.remove_all(comment=_comment(root))
    job = tab.new(command=command, comment=_comment(root))
    job.setall(schedule)
    _write(tab, tabfile, user)
    return CronEntry(root, schedule, command, True)


def entries(*, tabfile: str | os.PathLike | None = None, user: str | None = None) -> list[CronEntry]:
    """mlops-nb's lines in the user's crontab (or ``tabfile``, or ``user``'s), in crontab order."""
    tab = _crontab(tabfile, user)
    found = []
    for job in tab:
        if job.comment.startswith(f"{TAG} "):
            found.append(CronEntry(Path(job.comment[len(TAG) + 1:]), str(job.slices), job.command,
                                   job.is_enabled()))
    return found


def remove(package_path: str | os.PathLike | None = None, *, tabfile: str | os.PathLike | None = None,
           user: str | None = None) -> list[CronEntry]:
    """Remove the line of one package (or, with None, every mlops-nb line); return what went."""
    tab = _crontab(tabfile, user)
    if package_path is None:
        wanted = None
    else:
        path = Path(package_path).expanduser().absolute()
        try:
            wanted = str(package_root(path))
        except MlopsError:
            wanted = str(path)  # the package may be gone already: its line can still go
    gone = []
    for job in list(tab):
        if not job.comment.startswith(f"{TAG} "):
            continue
        root = job.comment[len(TAG) + 1:]
        if wanted is None or root == wanted:
            gone.append(CronEntry(Path(root), str(job.slices), job.command, job.is_enabled()))
            tab.remove(job)
    if gone:
        _write(tab, tabfile, user)
    return gone
