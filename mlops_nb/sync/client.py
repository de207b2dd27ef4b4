"""The MLflow client, as the sync uses it: imported on first use, with short timeouts, and every
failure turned into an error that names the server, the run and what to do.

Credentials are MLflow's own: ``MLFLOW_TRACKING_TOKEN`` (a bearer token) or
``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD`` (HTTP basic auth), read by the client
from the environment; mlops-nb stores none of them."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from mlops_nb.errors import ServerUnreachable, SyncAuthRefused, SyncError

INSTALL_HINT = "pip install 'mlops-nb[mlflow]' (or pip install mlflow-skinny)"

#: MLflow's own limits on one log_batch request (mlflow.utils.validation, the REST API's LogBatch).
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_ENTITIES_PER_BATCH = 1000
MAX_PARAM_VAL_LENGTH = 6000
MAX_TAG_VAL_LENGTH = 8000
MAX_KEY_LENGTH = 250

#: A sync run by hand waits as MLflow would; an automatic one (end of a run, retraining) must not
#: stall for minutes when the server is down (MLflow's defaults: 120 s timeout, 7 retries).
#: MLflow also prints a "View run" link per ended run; the sync prints one line of its own instead.
AUTO_TIMEOUTS = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "5", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
                 "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}
MANUAL_TIMEOUTS = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "30", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
                   "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}


def mlflow_client(uri: str) -> Any:
    """An ``MlflowClient`` for tracking and registry at ``uri``; SyncError says how to install it."""
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise SyncError(f"syncing to {uri} needs MLflow's client, which is not installed; {INSTALL_HINT}") from None
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


@contextlib.contextmanager
def timeouts(values: dict[str, str]) -> Iterator[None]:
    """Set MLflow's HTTP timeout, retries and printing for the sync, unless the user set them; restore after."""
    saved = {key: os.environ.get(key) for key in values}
    for key, value in values.items():
        if saved[key] is None:
            os.environ[key] = value
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)


def error_code(exc: BaseException) -> str:
    """MLflow's error code of ``exc`` (``RESOURCE_ALREADY_EXISTS``, ...), or ''."""
    return str(getattr(exc, "error_code", "") or "")


def translate(exc: BaseException, uri: str, what: str, *, owned: str | None = None,
              meanwhile: str = "") -> SyncError:
    """The :class:`SyncError` a user can act on for ``exc``, raised while doing ``what`` (names the run).

    ``owned`` names what a refused permission is about (``experiment 'churn' (id 3)``): on a server
    with permissions, a name that exists already belongs to whoever created it. ``meanwhile`` says
    what the user can still do until the permission is given."""
    text = str(exc)
    code = error_code(exc)
    first = (text.strip().splitlines() or [""])[0][:300]
    if code in ("UNAUTHENTICATED",) or " 401" in text or "status code 401" in text:
        refused, fix = _refused_credentials()
        return SyncAuthRefused(f"the MLflow server {uri} {refused} while {what} (HTTP 401); {fix}, and sync again")
    if code == "PERMISSION_DENIED" or " 403" in text:
        if owned:
            return SyncAuthRefused(
                f"the MLflow server {uri} refused permission while {what}: {owned} belongs to another user, "
                f"who has not given {_who()} EDIT permission on it; ask its owner or an admin for EDIT "
                f"permission, then sync again{meanwhile}")
        return SyncAuthRefused(
            f"the MLflow server {uri} refused permission while {what}; ask the server's admin for EDIT permission, "
            f"or sync with other credentials{meanwhile}")
    if _unreachable(exc, text):
        return ServerUnreachable(
            f"the MLflow server {uri} did not answer while {what}; the local store is unchanged and the "
            f"next sync catches up (check the URI and that the server runs: curl {uri.rstrip('/')}/health)")
    if code == "INVALID_PARAMETER_VALUE":
        return SyncError(f"the MLflow server {uri} rejected a value while {what}: {first}; "
                         f"change the value in the run, or report it if mlops-nb should have adapted it")
    return SyncError(f"the MLflow server {uri} answered an error while {what}: {first}")


def _refused_credentials() -> tuple[str, str]:
    """What the server refused, and the fix, by MLflow's credential variables (never their values)."""
    if os.environ.get("MLFLOW_TRACKING_TOKEN"):
        return ("refused the token in MLFLOW_TRACKING_TOKEN",
                "set a valid one, or unset it and set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD")
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    if user:
        return (f"refused the credentials of user '{user}' (MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD)",
                "check that password, or set MLFLOW_TRACKING_TOKEN instead")
    return ("asked for credentials and none are set",
            "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or MLFLOW_TRACKING_TOKEN")


def _who() -> str:
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    return f"user '{user}'" if user and not os.environ.get("MLFLOW_TRACKING_TOKEN") else "you"


def _unreachable(exc: BaseException, text: str) -> bool:
    import requests

    if isinstance(exc, (requests.ConnectionError, requests.Timeout, ConnectionError, TimeoutError)):
        return True
    markers = ("Max retries exceeded", "Connection refused", "ConnectionError", "timed out", "Read timed out",
               "Name or service not known", "Failed to establish")
    return any(m in text for m in markers) or " 502" in text or " 503" in text or " 504" in text
