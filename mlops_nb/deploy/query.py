"""The one kind of SQL a retraining job runs: a single read-only ``SELECT`` (or ``WITH ... SELECT``).

The job runs unattended, often as root, with a query that comes from ``--query`` or from
``settings.json`` (a file the docs call the user's to edit). So the query is checked twice: here,
by a tokenizer that knows comments, string literals, quoted names and dollar quotes, and again by
the database, on a connection that cannot write (:mod:`mlops_nb.deploy.sources`). Either alone
could be fooled (a data-modifying CTE, a function with side effects); together they refuse what a
retraining job has no business running.
"""

from __future__ import annotations

import re

from mlops_nb.errors import PackageError

#: Keywords that make a statement write (or reach outside the database); none belongs in a SELECT.
#: (Not REPLACE, SET or COMMENT: a function and common column names. The read-only connection
#: refuses what this list lets through.)
WRITING_WORDS = frozenset({
    "alter", "attach", "call", "commit", "copy", "create", "delete", "detach", "drop", "exec", "execute", "grant",
    "insert", "into", "merge", "pragma", "reindex", "revoke", "rollback", "savepoint", "truncate", "update",
    "upsert", "vacuum",
})
_DOLLAR = re.compile(r"\$([A-Za-z_][A-Za-z_0-9]*)?\$")
_WORD = re.compile(r"[A-Za-z_][A-Za-z_0-9$]*")


def check_query(query: object, *, origin: str = "--query") -> str:
    """``query`` unchanged when it is one ``SELECT``/``WITH`` statement that writes nothing;
    :class:`PackageError` (exit 78) naming the problem and ``origin`` otherwise."""
    if not isinstance(query, str) or not query.strip():
        raise PackageError(f"{origin} must be a SQL SELECT statement, e.g. \"SELECT * FROM churn_weekly\"")
    if any(ord(ch) < 32 and ch not in "\t\n\r" for ch in query) or "\x7f" in query:
        raise PackageError(f"{origin} holds a control character; give a plain SELECT statement")
    words, statements = _scan(query, origin)
    if statements > 1:
        raise PackageError(f"{origin} holds {statements} statements; a retraining job runs one read-only "
                           f"SELECT (remove the semicolons between statements)")
    if not words:
        raise PackageError(f"{origin} holds only comments; give a SELECT statement")
    if words[0] not in ("select", "with", "values"):
        raise PackageError(f"{origin} starts with {words[0].upper()}; a retraining job only reads, so the query "
                           f"must be one SELECT (or WITH ... SELECT) statement")
    writing = sorted(set(words) & WRITING_WORDS)
    if writing:
        raise PackageError(f"{origin} contains {writing[0].upper()}, which writes or changes the database; "
                           f"a retraining job only reads: give one SELECT statement")
    return query


def _scan(query: str, origin: str) -> tuple[list[str], int]:
    """The query's keywords and names (lower case, outside comments, strings and quoted names)
    and how many statements it holds (a trailing semicolon ends the one statement)."""
    words: list[str] = []
    statements, seen_token, i, n = 0, False, 0, len(query)
    while i < n:
        ch = query[i]
        if query.startswith("--", i):
            end = query.find("\n", i)
            i = n if end < 0 else end + 1
            continue
        if query.startswith("/*", i):
            end = query.find("*/", i + 2)
            if end < 0:
                raise PackageError(f"{origin} has a /* comment that never ends")
            i = end + 2
            continue
        if ch in "'\"`[":
            close = "]" if ch == "[" else ch
            j = i + 1
            while True:
                j = query.find(close, j)
                if j < 0:
                    raise PackageError(f"{origin} has a {ch} quote that never closes")
                if close != "]" and query.startswith(close * 2, j):
                    j += 2  # a doubled quote inside the literal
                    continue
                break
            i, seen_token = j + 1, True
            continue
        dollar = _DOLLAR.match(query, i) if ch == "$" else None
        if dollar:
            end = query.find(dollar.group(0), dollar.end())
            if end < 0:
                raise PackageError(f"{origin} has a {dollar.group(0)} quote that never closes")
            i, seen_token = end + len(dollar.group(0)), True
            continue
        if ch == ";":
            if seen_token:
                statements += 1
            seen_token = False
            i += 1
            continue
        word = _WORD.match(query, i)
        if word:
            words.append(word.group(0).lower())
            i, seen_token = word.end(), True
            continue
        if not ch.isspace():
            seen_token = True
        i += 1
    return words, statements + (1 if seen_token else 0)
