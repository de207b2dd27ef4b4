"""Where fresh data comes from: files (CSV, Parquet, JSON paths and globs) and databases (a URL
read with a query through SQLAlchemy)."""

from __future__ import annotations

import glob
import os
from typing import TYPE_CHECKING, Any

from mlops_nb.errors import DataNotFound, PackageError

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
        name = path.lower().removesuffix(".gz")
        if os.path.getsize(path) == 0:
            continue  # an empty file (a writer that has not started): no rows, no columns
        if name.endswith(".csv"):
            frames.append(pd.read_csv(path))
        elif name.endswith(".tsv"):
            frames.append(pd.read_csv(path, sep="\t"))
        elif name.endswith((".parquet", ".pq")):
            frames.append(pd.read_parquet(path))
        elif name.endswith((".jsonl", ".ndjson")):
            frames.append(pd.read_json(path, lines=True))
        elif name.endswith(".json"):
            frames.append(pd.read_json(path))
        else:
            raise PackageError(f"cannot read {path}: use .csv, .tsv, .parquet, .json or .jsonl files")
    table = frames[0] if len(frames) == 1 else (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame())
    if table.empty:
        raise DataNotFound(f"the data at {text} holds no rows ({len(paths)} file{'s' if len(paths) != 1 else ''})")
    return table


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
    import pandas as pd

    try:
        engine = sqlalchemy.create_engine(source)
    except Exception as exc:
        raise PackageError(f"cannot use the database URL {_safe_url(source)}: {exc}") from None
    try:
        with engine.connect() as connection:
            table = pd.read_sql_query(sqlalchemy.text(query), connection)
    except (sqlalchemy.exc.SQLAlchemyError, pd.errors.DatabaseError) as exc:
        cause = exc.__cause__ if isinstance(exc, pd.errors.DatabaseError) and exc.__cause__ else exc
        text = str(getattr(cause, "orig", None) or cause).strip()
        first = text.splitlines()[0] if text else type(exc).__name__
        raise DataNotFound(f"no data from {_safe_url(source)} with {query!r}: {first}") from None
    finally:
        engine.dispose()
    if table.empty:
        raise DataNotFound(f"the query {query!r} on {_safe_url(source)} returned no rows")
    return table


def _safe_url(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@", 1)[-1] if "@" in url else url


def describe_source(source: str) -> str:
    return _safe_url(source) if is_database_url(source) else source
