"""The ``where`` filter language of ``mnb.runs(where=...)``, the CLI and the compare widget.

Pure: a tokenizer and a recursive-descent parser that turn text such as
``metrics.f1 > 0.8 and params.model = 'rf'`` into a small tree of frozen dataclasses. It holds
no SQL and executes nothing; the store translates the tree into a parametrised query.

Grammar (keywords are case-insensitive; ``not`` binds tighter than ``and``, ``and`` than ``or``)::

    expr       := term ("or" term)*
    term       := factor ("and" factor)*
    factor     := "not" factor | "(" expr ")" | comparison
    comparison := column op value | value op column     # the second is flipped: 0.8 < m.f1
                | column ["not"] "in" "(" value ("," value)* ")"
                | column ["not"] "like" string
    op         := "=" | "==" | "!=" | "<>" | "<" | "<=" | ">" | ">="
    column     := run_id | project | name | kind | status | start_time | end_time | duration
                | (params|metrics|tags) "." key | "`" any column, spaces allowed "`"
    value      := number | 'string' | "string"      # \\x is a literal x; '' inside '...' is '

``column not in (...)`` and ``column not like '...'`` parse to ``Not(Comparison(...))``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

from mlops_nb.errors import FilterError

BASE_COLUMNS: tuple[str, ...] = (
    "run_id", "project", "name", "kind", "status", "start_time", "end_time", "duration",
)  # fmt: skip
"""The columns of a run that need no namespace."""

NAMESPACES: tuple[str, ...] = ("params", "metrics", "tags")
"""The prefixes of ``namespace.key`` columns."""

MAX_OPERATORS = 100
"""At most this many ``and``/``or``/``not``/``(`` in one expression (bounds recursion)."""

_KEYWORDS = frozenset({"and", "or", "not", "in", "like"})
_OPS = {"=": "=", "==": "=", "!=": "!=", "<>": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_FLIP = {"=": "=", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_TOKEN = re.compile(
    r"""(?P<ws>\s+)
    | (?P<str>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*")
    | (?P<col>`(?:[^`]|``)*`)
    | (?P<num>-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
    | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_.\-]*)?)
    | (?P<op><=|>=|<>|!=|==|=|<|>)
    | (?P<punct>[(),])""",
    re.VERBOSE | re.DOTALL,
)
_COLUMNS_HINT = ", ".join(BASE_COLUMNS) + ", params.<key>, metrics.<key> or tags.<key>"
_OPERATOR_HINT = "a comparison operator (=, !=, <, <=, >, >=, in or like)"
_VALUE_HINT = "a value (a number or a quoted string)"


@dataclass(frozen=True)
class Column:
    """A column named in an expression: ``namespace`` is None for a base column, else
    ``'params'``, ``'metrics'`` or ``'tags'``; ``position`` is its character offset."""

    namespace: str | None
    key: str
    position: int


@dataclass(frozen=True)
class Comparison:
    """``column op value``; ``op`` is one of ``= != < <= > >= in like``; ``value`` is a tuple
    for ``in``, a pattern string (``%`` and ``_`` wildcards) for ``like``."""

    column: Column
    op: str
    value: str | int | float | tuple[str | int | float, ...]


@dataclass(frozen=True)
class And:
    """Both sides hold."""

    left: Expr
    right: Expr


@dataclass(frozen=True)
class Or:
    """Either side holds."""

    left: Expr
    right: Expr


@dataclass(frozen=True)
class Not:
    """The operand does not hold."""

    operand: Expr


Expr = Comparison | And | Or | Not


class _Token(NamedTuple):
    kind: str  # str num ident kw col op ( ) , end
    raw: str
    value: object
    pos: int


def _unquote(body: str, quote: str) -> str:
    return re.sub(r"\\(.)|" + quote * 2, lambda m: m.group(1) or quote, body, flags=re.DOTALL)


def _tokenize(expression: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos, operators = 0, 0
    while pos < len(expression):
        match = _TOKEN.match(expression, pos)
        char = expression[pos]
        if match is None:
            what = "string" if char in "'\"" else "backquoted column" if char == "`" else None
            hint = (
                "backquote a column with such characters, e.g. `params.my key`"
                if char.isalnum()
                else "quote text values, e.g. name = 'a;b'"
            )
            message = (
                f"unterminated {what} starting at position {pos}: add the closing {char}"
                if what
                else f"unexpected character {char!r} at position {pos}: {hint}"
            )
            raise FilterError(message, expression=expression, position=pos)
        kind, raw = match.lastgroup or "", match.group()
        value: object = raw
        if kind == "str":
            value = _unquote(raw[1:-1], raw[0])
        elif kind == "col":
            value = raw[1:-1].replace("``", "`")
        elif kind == "num":
            value = float(raw) if any(c in raw for c in ".eE") else int(raw)
        elif kind == "ident" and raw.lower() in _KEYWORDS:
            kind, value = "kw", raw.lower()
        elif kind == "op":
            value = _OPS[raw]
        elif kind == "punct":
            kind = raw
        if raw == "(" or (kind == "kw" and value in ("and", "or", "not")):
            operators += 1
        if operators > MAX_OPERATORS:
            raise FilterError(
                f"expression too complex at position {pos}: at most {MAX_OPERATORS} of 'and', "
                "'or', 'not' and '('; use 'in (...)' to match many values",
                expression=expression,
                position=pos,
            )
        if kind != "ws":
            tokens.append(_Token(kind, raw, value, pos))
        pos = match.end()
    tokens.append(_Token("end", "", None, len(expression)))
    return tokens


class _Parser:
    def __init__(self, expression: str):
        self.expression = expression
        self.tokens = _tokenize(expression)
        self.i = 0

    def next(self) -> _Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def at(self, kind: str, value: object = None) -> bool:
        token = self.tokens[self.i]
        return token.kind == kind and (value is None or token.value == value)

    def fail(self, message: str, position: int) -> FilterError:
        return FilterError(message, expression=self.expression, position=position)

    def unexpected(self, token: _Token, expected: str) -> FilterError:
        what = (
            "end of expression" if token.kind == "end"
            else f"token {token.raw}" if token.kind == "str"
            else f"token '{token.raw}'"
        )  # fmt: skip
        message = f"unexpected {what} at position {token.pos}: expected {expected}"
        return self.fail(message, token.pos)

    def expr(self) -> Expr:
        left = self.term()
        while self.at("kw", "or"):
            self.next()
            left = Or(left, self.term())
        return left

    def term(self) -> Expr:
        left = self.factor()
        while self.at("kw", "and"):
            self.next()
            left = And(left, self.factor())
        return left

    def factor(self) -> Expr:
        if self.at("kw", "not"):
            self.next()
            return Not(self.factor())
        if self.at("("):
            opening = self.next()
            inner = self.expr()
            if not self.at(")"):
                expected = f"'and', 'or' or ')' to close '(' at position {opening.pos}"
                raise self.unexpected(self.next(), expected)
            self.next()
            return inner
        return self.comparison()

    def comparison(self) -> Expr:
        token = self.next()
        if token.kind in ("num", "str"):
            op = self.next()
            if op.kind != "op":
                raise self.unexpected(op, "a comparison operator (=, !=, <, <=, >, >=)")
            return Comparison(self.column(self.next()), _FLIP[op.value], token.value)
        column = self.column(token)
        op = self.next()
        if op.kind == "op":
            return Comparison(column, op.value, self.value())
        negate = op.kind == "kw" and op.value == "not"
        if negate:
            op = self.next()
        if op.kind == "kw" and op.value == "in":
            found = Comparison(column, "in", self.values())
        elif op.kind == "kw" and op.value == "like":
            pattern = self.next()
            if pattern.kind != "str":
                raise self.unexpected(pattern, "a quoted pattern, e.g. 'rf%'")
            found = Comparison(column, "like", pattern.value)
        else:
            raise self.unexpected(op, "'in' or 'like' after 'not'" if negate else _OPERATOR_HINT)
        return Not(found) if negate else found

    def column(self, token: _Token) -> Column:
        if token.kind not in ("ident", "col"):
            raise self.unexpected(token, "a column (e.g. metrics.f1), 'not' or '('")
        name = str(token.value)
        namespace, dot, key = name.partition(".")
        if not dot and name.lower() in BASE_COLUMNS:
            return Column(None, name.lower(), token.pos)
        if dot and namespace.lower() in NAMESPACES:
            if key:
                return Column(namespace.lower(), key, token.pos)
            message = f"column '{name}' at position {token.pos} has no key: write {name}<key>"
            raise self.fail(message, token.pos)
        message = f"unknown column '{name}' at position {token.pos}: use {_COLUMNS_HINT}"
        raise self.fail(message, token.pos)

    def value(self) -> str | int | float:
        token = self.next()
        if token.kind not in ("num", "str"):
            raise self.unexpected(token, _VALUE_HINT)
        return token.value  # type: ignore[return-value]

    def values(self) -> tuple[str | int | float, ...]:
        opening = self.next()
        if opening.kind != "(":
            raise self.unexpected(opening, "'(' starting a list of values, e.g. ('a', 'b')")
        items = [self.value()]
        while not self.at(")"):
            separator = self.next()
            if separator.kind != ",":
                expected = f"',' or ')' to close the list opened at position {opening.pos}"
                raise self.unexpected(separator, expected)
            items.append(self.value())
        self.next()
        return tuple(items)


def parse(expression: str) -> Expr:
    """Parse a ``where`` expression into a tree of :class:`Comparison`, :class:`And`,
    :class:`Or` and :class:`Not`.

    ``expression`` is the filter text, e.g. ``"metrics.f1 > 0.8 and params.model = 'rf'"``.
    A literal on the left (``0.8 < metrics.f1``) is normalised to the column on the left.
    Raises :class:`~mlops_nb.errors.FilterError` naming the bad token, its position and what
    was expected.
    """
    if not expression or not expression.strip():
        raise FilterError(
            "empty filter expression: write a condition such as "
            "metrics.f1 > 0.8 and params.model = 'rf'"
        )
    parser = _Parser(expression)
    tree = parser.expr()
    if not parser.at("end"):
        raise parser.unexpected(parser.next(), "'and', 'or' or the end of the expression")
    return tree


def columns(expr: Expr) -> list[Column]:
    """Every column ``expr`` names, left to right, one entry per occurrence."""
    if isinstance(expr, Comparison):
        return [expr.column]
    if isinstance(expr, Not):
        return columns(expr.operand)
    return columns(expr.left) + columns(expr.right)
