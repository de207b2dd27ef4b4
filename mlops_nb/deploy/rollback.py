"""Rollback: point a package's ``current`` back at an earlier version, and the registry's
``champion`` at its model."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_nb.deploy.layout import current_version, locked, package_root, switch_current, version_number, versions
from mlops_nb.deploy.verify import read_manifest, verify
from mlops_nb.errors import PackageError


@dataclass
class Rollback:
    """What :func:`rollback` did."""

    root: Path
    before: Path | None
    after: Path
    name: str
    model_version: int
    registry: str

    def __str__(self) -> str:
        was = self.before.name if self.before is not None else "nothing"
        return (f"rolled back {self.root}: current {was} -> {self.after.name} ({self.name} version "
                f"{self.model_version}); {self.registry}")


def find_package(name_or_path: str | os.PathLike, *, store: Any = None) -> Path:
    """The package root of a path, or of a model name (its latest export recorded in the store)."""
    path = Path(name_or_path).expanduser()
    if path.exists():
        return package_root(path)
    from mlops_nb import store as store_module

    opened = store_module.open_store(store)
    for row in opened.deployments(str(name_or_path)):
        if row["path"] and Path(row["path"]).exists():
            return package_root(row["path"])
    raise PackageError(f"{name_or_path} is neither a package folder nor a model exported from {opened.path}; "
                       f"give the package's folder (the --to of the export)")


def rollback(name_or_path: str | os.PathLike, *, to: int | str | None = None, reason: str | None = None,
             store: str | os.PathLike | None = None) -> Rollback:
    """Point ``current`` of a package back at an earlier version, and the registry's ``champion``
    at its model (the one it replaces becomes ``previous``, so a second rollback swaps back).

    ``name_or_path``: the package folder, or a model name whose latest export the store recorded.
    ``to``: a package version (3 or ``"v0003"``); default: the version holding the registry's
    ``previous`` model, else the newest version older than the current one. The target's checksums
    must verify. Takes the package's lock (:class:`~mlops_nb.errors.PackageLocked` while a job runs).
    """
    from mlops_nb import store as store_module
    from mlops_nb.tracking import registry

    root = find_package(name_or_path, store=store)
    with locked(root, "rollback"):
        before = current_version(root)
        found = versions(root)
        if not found:
            raise PackageError(f"{root} has no package versions to roll back to")
        manifests = {number: read_manifest(folder) for number, folder in found}
        current_manifest = read_manifest(before) if before is not None else manifests[found[-1][0]]
        name = current_manifest["model"]["name"]
        opened = store_module.open_store(store or os.environ.get(store_module.ENV_VAR) or current_manifest.get("store"))
        if to is not None:
            number = int(str(to).lstrip("v"))
            target = dict(found).get(number)
            if target is None:
                raise PackageError(f"{root} has no version {to}; it has {', '.join(p.name for _, p in found)}")
        else:
            target = _rollback_target(found, manifests, before, opened.aliases(name).get("previous"))
        verify(target)
        switch_current(root, target)
    version = manifests[version_number(target)]["model"]["version"]
    if opened.model_version(name, version) is None:
        note = f"the store {opened.path} has no {name} version {version}: registry unchanged"
    else:
        registry.promote(name, version, "champion", by="mlops-nb rollback", store=opened,
                         reason=reason or f"rollback of {root} to {target.name}")
        note = f"{name} version {version} is champion again"
    return Rollback(root, before, target, name, version, note)


def _rollback_target(found: list[tuple[int, Path]], manifests: dict[int, dict], current: Path | None,
                     previous_model: int | None) -> Path:
    current_number = version_number(current) if current is not None else None
    others = [(n, p) for n, p in found if n != current_number]
    if previous_model is not None:
        holding = [(n, p) for n, p in others if manifests[n]["model"].get("version") == previous_model]
        if holding:
            return holding[-1][1]
    older = [(n, p) for n, p in others if current_number is None or n < current_number]
    if not older:
        raise PackageError(f"nothing to roll back to: {current} is the oldest version kept "
                           f"({', '.join(p.name for _, p in found)})")
    return older[-1][1]
