"""Exit statuses of retraining and prediction (sysexits, plus the project's own; DESIGN.md
section 4), the word each one is recorded as, and which status an error ends a job with."""

from __future__ import annotations

from mlops_nb.errors import ChecksumError, DataNotFound, MlopsError, SchemaMismatch, StoreError, UntrustedTypes

#: Exit statuses of retraining and prediction (sysexits, plus the project's own), DESIGN.md section 4.
EXIT_PROMOTED = 0
EXIT_BAD_DATA = 65
EXIT_NO_DATA = 66
EXIT_BUG = 70
EXIT_LOCKED = 75
EXIT_CONFIG = 78
EXIT_BELOW_REQUIREMENT = 80
EXIT_DRIFT = 81
EXIT_INTEGRITY = 82
EXIT_KEPT = 99

#: Exit status -> the word recorded as the run's ``decision`` tag.
DECISIONS = {
    EXIT_PROMOTED: "promoted", EXIT_KEPT: "kept champion", EXIT_BAD_DATA: "bad data", EXIT_NO_DATA: "no data",
    EXIT_BUG: "bug", EXIT_LOCKED: "locked", EXIT_CONFIG: "configuration", EXIT_BELOW_REQUIREMENT: "below requirement",
    EXIT_DRIFT: "drift needs a person", EXIT_INTEGRITY: "integrity",
}

#: The help text's summary of the statuses (retrain.py --help, mlops-nb retrain --help).
EXIT_HELP = ("Exit status: 0 promoted, 99 champion kept, 65 bad data, 66 no data, 75 already running, "
             "78 configuration or version mismatch, 80 below the requirement, 81 drift needs a person, "
             "82 integrity check failed, 70 a bug.")


def decision(code: int) -> str:
    """The word recorded as a run's ``decision`` tag for exit status ``code``."""
    return DECISIONS.get(code, "unknown")


class Stop(Exception):  # noqa: N818 - a way out of the job, not an error
    """Ends the job with exit status ``code`` and the one-line ``message`` that explains it."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def stop_for(exc: BaseException) -> Stop | None:
    """The exit status and line an expected error ends a job with; None for a bug (exit 70, with
    its traceback: the caller prints that)."""
    if isinstance(exc, ChecksumError | UntrustedTypes):
        return Stop(EXIT_INTEGRITY, f"integrity check failed: {exc}")
    if isinstance(exc, DataNotFound):
        return Stop(EXIT_NO_DATA, f"no data: {exc}")
    if isinstance(exc, SchemaMismatch):
        return Stop(EXIT_BAD_DATA, f"bad data: {exc}")
    if isinstance(exc, StoreError) and "locked" in str(exc):
        return Stop(EXIT_LOCKED, f"the store is busy: {exc}")
    if isinstance(exc, MlopsError):
        return Stop(EXIT_CONFIG, f"configuration: {exc}")
    return None
