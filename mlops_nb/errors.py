"""The error types users see.

Every message names the problem and the fix. Magics turn these into IPython ``UsageError``s,
the CLI into a one-line message and a non-zero exit.
"""

from __future__ import annotations


class MlopsError(Exception):
    """Base class of every error mlops-nb raises on purpose."""


class StoreError(MlopsError):
    """The store cannot be opened or written (not SQLite, read-only, bad path)."""


class RunNotFound(MlopsError):
    """A run id that the store does not know."""


class RunEnded(MlopsError):
    """Logging to a run that has already ended."""


class InvalidValue(MlopsError, ValueError):
    """A param, metric or tag value that cannot be stored as given."""


class FilterError(MlopsError, ValueError):
    """A ``where`` expression that does not parse or names an unknown column."""

    def __init__(self, message: str, *, expression: str = "", position: int | None = None):
        if position is not None and expression:
            message = f"{message}\n  {expression}\n  {' ' * position}^"
        super().__init__(message)
        self.expression = expression
        self.position = position


class RequirementError(MlopsError, ValueError):
    """A requirement such as ``f1 >= 0.85`` that does not parse."""


class StageError(MlopsError, ValueError):
    """An unknown stage name."""


class RegistryError(MlopsError, ValueError):
    """An unknown model name, version or alias, or a model that cannot be registered."""


class ExportError(MlopsError):
    """An export that was refused or could not be written; the message says why and how to override."""


class PackageError(MlopsError):
    """An exported package that is missing, malformed, or will not load safely."""


class ChecksumError(PackageError):
    """A file of a package whose bytes differ from its MANIFEST.json entry."""


class UntrustedTypes(PackageError):
    """A packaged model using types outside mlops-nb's fixed allow-list."""


class SchemaMismatch(PackageError):
    """Input data that does not match a package's schema.json (exit status 65)."""

    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.problems = list(problems or [])

    @staticmethod
    def listing(problems: list[str], limit: int = 5) -> str:
        """The first ``limit`` problems joined for a one-line message, and how many more there are: a
        request missing 29 columns reads as five and "24 more", while ``problems`` keeps them all."""
        shown = "; ".join(problems[:limit])
        return shown if len(problems) <= limit else f"{shown}; and {len(problems) - limit} more"


class BadData(SchemaMismatch):
    """Input data that cannot be read as a table: binary bytes in a CSV, malformed JSON, a JSON
    scalar (exit status 65, like any data that does not fit)."""


class DataNotFound(PackageError):
    """A data source that matches no file, or holds no rows (exit status 66)."""


class PackageLocked(PackageError):
    """Another retraining, export or rollback of the same package is running (exit status 75)."""


class SyncError(MlopsError):
    """A sync to an MLflow tracking server that was refused: a value or an experiment the server would
    not take (exit status 1). The message names the server, the run and what to do."""


class ServerUnreachable(SyncError):
    """The MLflow tracking server did not answer (exit status 69); the local store is unchanged."""


class SyncAuthRefused(SyncError):
    """The MLflow tracking server refused the credentials, or lacks a permission (exit status 77)."""
