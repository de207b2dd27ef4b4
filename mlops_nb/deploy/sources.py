"""Where fresh data comes from: files (CSV, Parquet, JSON paths and globs) and databases (a URL
read with one SELECT through SQLAlchemy, on a connection that cannot write: SQLite files are opened
``mode=ro`` with ``query_only``, other engines inside a ``READ ONLY`` transaction that is rolled back).

A file that cannot be read as a table (binary bytes in a CSV, malformed JSON, a JSON scalar) is
:class:`~mlops_nb.errors.BadData` (exit 65); a path that matches nothing or holds no rows is
:class:`~mlops_nb.errors.DataNotFound` (66); a refused query or URL is :class:`PackageError` (78)."""

from __future__ import annotations

import glob
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mlops_nb.deploy.query import check_query
from mlops_nb.errors import BadData, DataNotFound, PackageError

if TYPE_CHECKING:
    import pandas


def read_table(source: str | os.PathLike) -> pandas.DataFrame:
    """Read CSV (``.csv``, ``.tsv``, optionally ``.gz``), Parquet (``.parquet``, ``.pq``) or JSON
    (``.json`` records, ``.jsonl``/``.ndjson`` lines) from a path or a glob; several matching files
    are concatenated in name order. :class:`DataNotFound` when nothing matches or no row is there."""
    import pandas as pd

    text = os.path.expanduser(os.fspath(source))
    if "://" in text and not text.startswith("file://"):
        raise PackageError(f"{text} is not a file path or glob; read a database URL with read_source(URL, query)")
    text = text.removeprefix("file://")
    paths = sorted(glob.glob(text)) if glob.has_magic(text) else ([text] if os.path.exists(text) else [])
    paths = [p for p in paths if os.path.isfile(p)]
    if not paths:
        raise DataNotFound(f"no data at {text}: no file matches it")
    frames = []
    for path in paths:
        try:
            frame = _read_file(path)
        except (PackageError, MemoryError):
            raise
        except PermissionError:
            raise DataNotFound(f"cannot read {path}: permission denied") from None
        except ImportError as exc:
            raise PackageError(f"reading {path} needs {exc.name or 'a library'}: pip install pyarrow") from None
        except (UnicodeDecodeError, ValueError, TypeError, OSError, EOFError, IndexError) as exc:
            # pandas' parser errors are ValueErrors; a binary file fails to decode; pyarrow's
            # ArrowInvalid is a ValueError too. One line that names the file, never a traceback.
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise BadData(f"cannot read {path} as a table ({type(exc).__name__}: {first}); "
                          f"check that it is a {_kind(path)} file", []) from None
        if frame is not None:
            if not hasattr(frame, "columns"):  # read_json of a list of scalars, say
                raise BadData(f"{path} does not hold a table of rows; give records such as "
                              f"[{{\"a\": 1}}, ...]", [])
            frames.append(frame)
    table = frames[0] if len(frames) == 1 else (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame())
    if table.empty:
        raise DataNotFound(f"the data at {text} holds no rows ({len(paths)} file{'s' if len(paths) != 1 else ''})")
    return table


#: The files read_table understands (an ending, after an optional .gz), the format's name, and how
#: pandas reads it: one table, so the reader and the error message that names the format agree.
_FORMATS: tuple[tuple[tuple[str, ...], str, Callable[[Any, str], Any]], ...] = (
    ((".csv",), "CSV", lambda pd, path: pd.read_csv(path)),
    ((".tsv",), "TSV", lambda pd, path: pd.read_csv(path, sep="\t")),
    ((".parquet", ".pq"), "Parquet", lambda pd, path: pd.read_parquet(path)),
    ((".jsonl", ".ndjson"), "JSON lines", lambda pd, path: pd.read_json(path, lines=True)),
    ((".json",), "JSON", lambda pd, path: pd.read_json(path)),
)


def _format(path: str) -> tuple[tuple[str, ...], str, Callable[[Any, str], Any]] | None:
    name = path.lower().removesuffix(".gz")
    return next((entry for entry in _FORMATS if name.endswith(entry[0])), None)


def _read_file(path: str) -> pandas.DataFrame | None:
    """One file as a DataFrame by its extension; None for an empty file (a writer not started yet)."""
    import pandas as pd

    if os.path.getsize(path) == 0:
        return None
    found = _format(path)
    if found is None:
        raise PackageError(f"cannot read {path}: use .csv, .tsv, .parquet, .json or .jsonl files")
    return found[2](pd, path)


def _kind(path: str) -> str:
    found = _format(path)
    return found[1] if found else "data"


def is_database_url(source: str) -> bool:
    return "://" in source and not source.startswith("file://")


def read_source(source: str, query: str | None = None) -> Any:
    """Fresh data from ``source``: a file path or glob (:func:`read_table`), or a
    database URL (``postgresql://...``, ``sqlite:////abs/path.db``) read with ``query`` through
    SQLAlchemy. :class:`DataNotFound` when there is nothing; :class:`PackageError` when SQLAlchemy
    is missing or no query is given."""
    if not is_database_url(source):
        return read_table(source)
    try:
        import sqlalchemy
    except ImportError:
        raise PackageError(f"reading {_safe_url(source)} needs SQLAlchemy and the database's driver: "
                           f"pip install sqlalchemy (plus e.g. psycopg for PostgreSQL)") from None
    if not query:
        raise PackageError(f"{_safe_url(source)} is a database: give the rows to read with --query \"SELECT ...\" "
                           f"or \"query\" in settings.json")
    check_query(query)
    import pandas as pd

    try:
        engine = _readonly_engine(sqlalchemy, source)
    except PackageError:
        raise
    except Exception as exc:
        raise PackageError(f"cannot use the database URL {_safe_url(source)}: {exc}") from None
    try:
        with engine.connect() as connection:
            if engine.dialect.name != "sqlite":
                # Postgres and MySQL: the transaction the SELECT runs in cannot write (rolled back anyway).
                try:
                    connection.exec_driver_sql("SET TRANSACTION READ ONLY")
                except sqlalchemy.exc.SQLAlchemyError as exc:
                    raise PackageError(f"{_safe_url(source)} cannot start a read-only transaction, so mlops-nb "
                                       f"will not run a query on it ({_first_line(exc)})") from None
            try:
                table = pd.read_sql_query(sqlalchemy.text(query), connection)
            finally:
                connection.rollback()
    except PackageError:
        raise
    except (sqlalchemy.exc.SQLAlchemyError, pd.errors.DatabaseError) as exc:
        text = _first_line(exc)
        if "readonly" in text.lower() or "read-only" in text.lower() or "read only" in text.lower():
            raise PackageError(f"the query {query!r} tried to write to {_safe_url(source)}, which a retraining "
                               f"job never does: give one SELECT statement") from None
        raise DataNotFound(f"no data from {_safe_url(source)} with {query!r}: {text}") from None
    finally:
        engine.dispose()
    if table.empty:
        raise DataNotFound(f"the query {query!r} on {_safe_url(source)} returned no rows")
    return table


def _readonly_engine(sqlalchemy: Any, source: str) -> Any:
    """An engine for ``source`` whose connections cannot write. A SQLite file is opened through a
    ``mode=ro`` URI with ``PRAGMA query_only`` (no file is created, no journal written); a missing
    SQLite file is missing data, not a new empty database."""
    import sqlite3

    url = sqlalchemy.engine.make_url(source)
    if url.get_backend_name() != "sqlite":
        return sqlalchemy.create_engine(source)
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        raise PackageError(f"{_safe_url(source)} names no SQLite file; write sqlite:////absolute/path.db")
    path = os.path.abspath(database)
    if not os.path.isfile(path):
        raise DataNotFound(f"no SQLite database at {path}")

    def connect() -> sqlite3.Connection:
        from pathlib import Path

        conn = sqlite3.connect(f"{Path(path).as_uri()}?mode=ro", uri=True, check_same_thread=False)
        conn.execute("PRAGMA query_only = ON")
        return conn

    return sqlalchemy.create_engine("sqlite://", creator=connect, poolclass=sqlalchemy.pool.NullPool)


def _first_line(exc: BaseException) -> str:
    cause = exc.__cause__ if exc.__cause__ is not None and not hasattr(exc, "orig") else exc
    text = str(getattr(cause, "orig", None) or cause).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _safe_url(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@", 1)[-1] if "@" in url else url


def describe_source(source: str) -> str:
    return _safe_url(source) if is_database_url(source) else source
