"""From a recorded notebook cell to plain Python: IPython's syntax (magics, ``!shell``, ``obj?``)
and bare display expressions are taken out, each with a note, without importing IPython.

IPython's own transformer would turn ``%time f()`` into ``get_ipython().run_line_magic(...)``;
retrain.py runs with no IPython at all, so here such lines are dropped instead. The cleaner works
line by line and asks :mod:`tokenize` whether a line starts a new statement, so a ``%`` or ``!``
inside a multi-line string, inside brackets or after a backslash continuation stays Python.
"""

from __future__ import annotations

import ast
import io
import re
import textwrap
import tokenize

from mlops_nb.errors import ExportError

#: Cell magics whose body is ordinary Python that retrain.py keeps.
PASSTHROUGH_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun"})
#: Bare calls that only show something in a notebook, dropped from retrain.py.
_ECHO_CALLS = frozenset({"display", "head", "tail", "describe", "info"})

_STAGE_HEADER = re.compile(r"\s*%%stage\b")
#: ``files = !ls``, ``out = %timeit -o f()``: IPython's assignment forms.
_MAGIC_ASSIGNMENT = re.compile(r"\s*[A-Za-z_][\w.,\s\[\]'\"]*?\s*(?<![=!<>])=\s*[!%]")
#: ``obj?``, ``obj.attr??``, ``?obj``, ``??obj``: IPython's help.
_HELP = re.compile(r"\s*(\?{1,2}[\w.]+|[\w.\[\]()'\"]+\?{1,2})\s*$")


def clean_cell(source: str) -> tuple[str, list[str]]:
    """A cell's Python without its ``%%stage`` header, magics, ``!shell`` lines, help lines and bare
    display expressions (``df.head()``, ``display(x)``, a lone name). Returns the code and notes on
    what was dropped. Comments and the order of what stays are kept.

    A ``%%magic`` header other than the pass-through ones (``%%time``, ``%%capture``...) drops the
    whole cell, with a note. :class:`ExportError` when what remains does not parse as Python.
    """
    lines = source.splitlines()
    while lines and not lines[0].strip():
        lines.pop(0)
    if lines and _STAGE_HEADER.match(lines[0]):
        lines.pop(0)
    while lines and not lines[0].strip():
        lines.pop(0)
    if lines and lines[0].lstrip().startswith("%%"):
        words = lines[0].strip()[2:].split()
        magic = words[0] if words else ""
        if magic not in PASSTHROUGH_CELL_MAGICS:
            return "", [f"dropped a %%{magic} cell, which is not Python"]
        lines.pop(0)
    kept, notes = _drop_ipython_lines(lines)
    text = "\n".join(lines) + "\n"
    code = "\n".join(kept) + "\n"
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        raise ExportError(f"a recorded cell does not parse as Python ({exc.msg}, line {exc.lineno}):\n"
                          f"{textwrap.indent(text, '    ')}") from None
    dropped: set[int] = set()
    for statement in tree.body:
        if _uses_ipython(statement) or _is_echo(statement):
            dropped.update(range(statement.lineno, statement.end_lineno + 1))
            if _uses_ipython(statement):
                notes.append(f"dropped notebook-only line: {kept[statement.lineno - 1].strip()[:60]}")
    rest = [line for number, line in enumerate(kept, 1) if number not in dropped]
    return "\n".join(rest).strip("\n") + "\n", notes


def _drop_ipython_lines(lines: list[str]) -> tuple[list[str], list[str]]:
    """The lines without IPython-only statements, and a note for each one dropped. A dropped line
    inside a block becomes ``pass`` at its indentation, so the block still parses."""
    kept: list[str] = []
    notes: list[str] = []
    statement: list[str] = []  # the lines of a statement still open (string, brackets, backslash)
    dropping = False  # inside a dropped magic line continued with a backslash
    for line in lines:
        if dropping:
            dropping = line.rstrip().endswith("\\")
            continue
        if not statement and _is_ipython_line(line):
            notes.append(f"dropped notebook-only line: {line.strip()[:60]}")
            indent = line[:len(line) - len(line.lstrip())]
            if indent:
                kept.append(f"{indent}pass")
            dropping = line.rstrip().endswith("\\")
            continue
        kept.append(line)
        statement.append(line)
        if _complete("\n".join(statement) + "\n"):
            statement = []
    return kept, notes


def _is_ipython_line(line: str) -> bool:
    """Whether a line that starts a statement is IPython syntax rather than Python."""
    stripped = line.lstrip()
    if stripped.startswith(("%", "!")):
        return True
    if stripped.startswith("#"):
        return False
    return bool(_MAGIC_ASSIGNMENT.match(line) or _HELP.match(line))


def _complete(text: str) -> bool:
    """False while ``text`` ends inside a multi-line string, open brackets or after a backslash."""
    try:
        for _ in tokenize.generate_tokens(io.StringIO(text).readline):
            pass
    except tokenize.TokenError as exc:
        return "EOF" not in str(exc.args[0])
    except (SyntaxError, IndentationError):
        return True  # not Python: the parse after cleaning reports it
    return True


def _uses_ipython(statement: ast.stmt) -> bool:
    return any(isinstance(n, ast.Name) and n.id == "get_ipython" for n in ast.walk(statement))


def _is_echo(statement: ast.stmt) -> bool:
    if not isinstance(statement, ast.Expr):
        return False
    value = statement.value
    if isinstance(value, ast.Name | ast.Attribute | ast.Subscript):
        return True
    if isinstance(value, ast.Call):
        func = value.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
        if name == "display" or (isinstance(func, ast.Attribute) and name in _ECHO_CALLS):
            return True
    return False
