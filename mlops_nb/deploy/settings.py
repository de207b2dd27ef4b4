"""Retraining settings: ``settings.json`` in the package root (not checksummed: the user's to
edit). Its defaults, its validation, and both reading and writing it live here."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlops_nb.deploy.layout import KEEP_VERSIONS, SETTINGS_FILE, write_synced
from mlops_nb.errors import MlopsError, PackageError

#: What dataset (or prediction) drift does: ``hold`` the candidate for a person (exit 81), go on and
#: ``retrain``, or ``retrain_on_drift`` only (no drift: champion kept, 99).
DRIFT_ACTIONS = ("hold", "retrain", "retrain_on_drift")
#: The ``drift`` key of packages exported before ``on_drift``, read as the new key.
OLD_DRIFT_ACTIONS = {"report": "retrain", "block": "hold", "retrain": "retrain_on_drift"}
#: ``settings.json`` of a new package. Every key is optional in the file; unknown keys are refused.
DEFAULT_SETTINGS: dict[str, Any] = {
    "on_drift": "hold",
    "max_missing": 0.05,
    "margin": 0.005,
    "metric": None,
    "holdout": 0.25,
    "seed": 0,
    "min_rows": 20,
    "keep_versions": KEEP_VERSIONS,
    "query": None,
    "drift_config": {},
}


def settings_bytes(settings: Mapping[str, Any] | None = None) -> bytes:
    """The text of a ``settings.json`` (the defaults, or ``settings``)."""
    return (json.dumps(dict(settings or DEFAULT_SETTINGS), indent=2) + "\n").encode()


def write_default_settings(root: str | os.PathLike) -> bool:
    """Write the default ``settings.json`` into package root ``root`` (fsynced) unless it has one;
    True when it was written. A user's edited settings are never replaced."""
    path = Path(root) / SETTINGS_FILE
    if path.exists():
        return False
    write_synced(path, settings_bytes())
    return True


def keep_versions(root: str | os.PathLike) -> int:
    """How many package versions to keep: ``keep_versions`` of the settings, or the default when
    settings.json is broken (a broken file is retraining's to report, with exit 78)."""
    try:
        return read_settings(root)["keep_versions"]
    except MlopsError:
        return KEEP_VERSIONS


def read_settings(root: str | os.PathLike) -> dict[str, Any]:
    """The retraining settings of package root ``root``: ``settings.json`` over :data:`DEFAULT_SETTINGS`.
    :class:`PackageError` names a key or value that is wrong and what it may be."""
    path = Path(root) / SETTINGS_FILE
    settings = dict(DEFAULT_SETTINGS)
    if not path.exists():
        return settings
    try:
        given = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PackageError(f"{path} is not valid JSON ({exc}); fix it or delete it to use the defaults") from None
    if not isinstance(given, dict):
        raise PackageError(f"{path} must hold a JSON object such as {{\"on_drift\": \"retrain\"}}")
    if "drift" in given and "on_drift" not in given:  # a package exported before on_drift
        old = given.pop("drift")
        if old not in OLD_DRIFT_ACTIONS:
            raise PackageError(f"{path}: \"drift\" is {json.dumps(old)}; it must be "
                               + " or ".join(f'"{a}"' for a in OLD_DRIFT_ACTIONS)
                               + " (or use \"on_drift\": " + " or ".join(f'"{a}"' for a in DRIFT_ACTIONS) + ")")
        given["on_drift"] = OLD_DRIFT_ACTIONS[old]
    unknown = sorted(set(given) - set(DEFAULT_SETTINGS))
    if unknown:
        raise PackageError(f"{path}: unknown setting{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                           f"the settings are {', '.join(DEFAULT_SETTINGS)}")
    settings.update(given)

    def bad(key: str, expected: str) -> PackageError:
        return PackageError(f"{path}: \"{key}\" is {json.dumps(settings[key])}; it must be {expected}")

    if settings["on_drift"] not in DRIFT_ACTIONS:
        raise bad("on_drift", " or ".join(f'"{a}"' for a in DRIFT_ACTIONS))
    if not is_number(settings["max_missing"]) or not 0 <= settings["max_missing"] <= 1:
        raise bad("max_missing", "the share of missing values accepted in a column the pipeline imputes, "
                                 "between 0 and 1 (0.05 is 5%)")
    if not is_number(settings["margin"]) or settings["margin"] < 0:
        raise bad("margin", "a number >= 0 (0.005 means half a point of the primary metric)")
    if not is_number(settings["holdout"]) or not 0.05 <= settings["holdout"] <= 0.9:
        raise bad("holdout", "the held-out share of the fresh data, between 0.05 and 0.9")
    for key in ("seed", "min_rows", "keep_versions"):
        if not isinstance(settings[key], int) or isinstance(settings[key], bool) or settings[key] < 0:
            raise bad(key, "a whole number >= 0")
    if settings["keep_versions"] < 1:
        raise bad("keep_versions", "at least 1")
    for key in ("metric", "query"):
        if settings[key] is not None and not isinstance(settings[key], str):
            raise bad(key, "a string or null")
    if settings["query"] is not None:
        from mlops_nb.deploy.query import check_query

        check_query(settings["query"], origin=f"{path}: \"query\"")
    if not isinstance(settings["drift_config"], dict):
        raise bad("drift_config", "an object of mlops_nb.drift thresholds, e.g. {\"psi_drift\": 0.3}")
    from mlops_nb.drift import DEFAULT_CONFIG

    wrong = sorted(set(settings["drift_config"]) - set(DEFAULT_CONFIG))
    if wrong:
        raise PackageError(f"{path}: unknown drift threshold {', '.join(wrong)}; they are {', '.join(DEFAULT_CONFIG)}")
    for key, value in settings["drift_config"].items():
        if not is_number(value) or value < 0:
            raise PackageError(f"{path}: drift threshold \"{key}\" is {json.dumps(value)}; it must be a number "
                               f">= 0 like its default {json.dumps(DEFAULT_CONFIG[key])}")
    return settings


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
