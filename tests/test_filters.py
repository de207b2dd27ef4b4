"""The ``where`` filter language: what users type and what the store receives."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mlops_nb.errors import FilterError
from mlops_nb.filters import (
    BASE_COLUMNS,
    MAX_OPERATORS,
    And,
    Column,
    Comparison,
    Not,
    Or,
    columns,
    parse,
)


def cmp(namespace, key, position, op, value):
    return Comparison(Column(namespace, key, position), op, value)


def error_of(expression: str) -> FilterError:
    with pytest.raises(FilterError) as info:
        parse(expression)
    return info.value


def caret_at(error: FilterError) -> int:
    """The column of the caret line that FilterError renders under the expression."""
    return str(error).splitlines()[-1].index("^") - 2


def test_example_parses_to_tree():
    assert parse("metrics.f1 > 0.8 and params.model = 'rf'") == And(
        cmp("metrics", "f1", 0, ">", 0.8),
        cmp("params", "model", 21, "=", "rf"),
    )


def test_every_base_column_and_operator():
    for column in BASE_COLUMNS:
        assert parse(f"{column} = 'x'") == cmp(None, column, 0, "=", "x")
    for written, op in [("=", "="), ("==", "="), ("!=", "!="), ("<>", "!="), ("<", "<"),
                        ("<=", "<="), (">", ">"), (">=", ">=")]:  # fmt: skip
        assert parse(f"duration {written} 3").op == op


def test_column_names_and_keywords_are_case_insensitive_keys_are_not():
    assert parse("Status = 'ok' AND Metrics.F1 > 1 Or NOT tags.A = 'b'") == Or(
        And(cmp(None, "status", 0, "=", "ok"), cmp("metrics", "F1", 18, ">", 1)),
        Not(cmp("tags", "A", 40, "=", "b")),
    )


def test_and_binds_tighter_than_or():
    assert parse("status = 'a' or status = 'b' and status = 'c'") == Or(
        cmp(None, "status", 0, "=", "a"),
        And(cmp(None, "status", 16, "=", "b"), cmp(None, "status", 33, "=", "c")),
    )


def test_parentheses_override_precedence():
    assert parse("(status = 'a' or status = 'b') and status = 'c'") == And(
        Or(cmp(None, "status", 1, "=", "a"), cmp(None, "status", 17, "=", "b")),
        cmp(None, "status", 35, "=", "c"),
    )


def test_chains_are_left_associative():
    tree = parse("kind = 1 or kind = 2 or kind = 3")
    assert isinstance(tree, Or) and isinstance(tree.left, Or)
    assert tree.right == cmp(None, "kind", 24, "=", 3)


def test_not_binds_tighter_than_and():
    assert parse("not status = 'ok' and kind = 'run'") == And(
        Not(cmp(None, "status", 4, "=", "ok")), cmp(None, "kind", 22, "=", "run")
    )
    assert parse("not (status = 'ok' and kind = 'run')") == Not(
        And(cmp(None, "status", 5, "=", "ok"), cmp(None, "kind", 23, "=", "run"))
    )
    assert parse("not not duration > 1") == Not(Not(cmp(None, "duration", 8, ">", 1)))


def test_in_list_of_mixed_values():
    assert parse("params.model IN ('rf', \"svm\", 3, -0.5)") == cmp(
        "params", "model", 0, "in", ("rf", "svm", 3, -0.5)
    )
    assert parse("status in ('ok')").value == ("ok",)


def test_like_pattern():
    assert parse("name LIKE 'rf%'") == cmp(None, "name", 0, "like", "rf%")


def test_not_in_and_not_like_negate():
    assert parse("status not in ('failed', 'killed')") == Not(
        cmp(None, "status", 0, "in", ("failed", "killed"))
    )
    assert parse("name not like 'tmp%'") == Not(cmp(None, "name", 0, "like", "tmp%"))


def test_literal_on_the_left_is_flipped():
    assert parse("0.8 < metrics.f1") == cmp("metrics", "f1", 6, ">", 0.8)
    assert parse("3 >= duration") == cmp(None, "duration", 5, "<=", 3)
    assert parse("'rf' = params.model") == cmp("params", "model", 7, "=", "rf")
    assert parse("1 <> metrics.n") == cmp("metrics", "n", 5, "!=", 1)


def test_quoted_strings_with_escapes():
    assert parse("name = 'it''s'").value == "it's"
    assert parse('name = "say ""hi"""').value == 'say "hi"'
    assert parse(r"name = 'it\'s'").value == "it's"
    assert parse(r'name = "a\"b\\c"').value == 'a"b\\c'
    assert parse("name = 'and or ( ) ; --'").value == "and or ( ) ; --"
    assert parse("name = ''").value == ""


def test_numbers_negative_float_exponent():
    assert parse("metrics.loss > -1").value == -1
    assert isinstance(parse("metrics.loss > 2").value, int)
    assert parse("metrics.loss < 1.5e-3").value == pytest.approx(0.0015)
    assert parse("metrics.loss < -2E2").value == -200.0
    assert isinstance(parse("metrics.loss < 1e3").value, float)
    assert parse("metrics.loss < .5").value == 0.5
    assert parse("duration>-1").value == -1


def test_dotted_and_hyphenated_keys():
    assert parse("params.model.C = 1").column == Column("params", "model.C", 0)
    assert parse("metrics.val-f1 >= 0.9").column == Column("metrics", "val-f1", 0)
    assert parse("tags.team_2 = 'x'").column == Column("tags", "team_2", 0)


def test_backquoted_columns():
    assert parse("`params.my key` = 'a'").column == Column("params", "my key", 0)
    assert parse("status = 'ok' and `metrics.f1 (macro)` > 0.5").right.column == Column(
        "metrics", "f1 (macro)", 18
    )
    assert parse("`tags.a``b` = 1").column == Column("tags", "a`b", 0)
    assert parse("`status` = 'ok'").column == Column(None, "status", 0)


def test_columns_lists_every_occurrence_in_order():
    tree = parse("not metrics.f1 > 0.8 or (params.C in (1, 2) and metrics.f1 < 0.99)")
    assert columns(tree) == [
        Column("metrics", "f1", 4),
        Column("params", "C", 25),
        Column("metrics", "f1", 48),
    ]


def test_empty_expression():
    for expression in ("", "   "):
        error = error_of(expression)
        assert "empty filter expression" in str(error)
        assert error.position is None


def test_missing_value_names_token_and_caret():
    error = error_of("(metrics.f1 > )")
    assert str(error).startswith(
        "unexpected token ')' at position 14: expected a value (a number or a quoted string)"
    )
    assert error.position == 14 and caret_at(error) == 14
    assert error.expression == "(metrics.f1 > )"


def test_unexpected_end_of_expression():
    error = error_of("metrics.f1 >")
    assert "unexpected end of expression at position 12: expected a value" in str(error)
    assert caret_at(error) == 12


def test_unterminated_string():
    error = error_of("name = 'rf")
    assert str(error).startswith("unterminated string starting at position 7")
    assert caret_at(error) == 7
    assert "unterminated string starting at position 7" in str(error_of(r"name = 'rf\'"))


def test_unterminated_backquote():
    error = error_of("`params.a = 1")
    assert str(error).startswith("unterminated backquoted column starting at position 0")


def test_unknown_column():
    error = error_of("foo = 1")
    assert str(error).startswith(
        "unknown column 'foo' at position 0: use run_id, project, name, kind, status, "
        "start_time, end_time, duration, params.<key>, metrics.<key> or tags.<key>"
    )
    assert caret_at(error) == 0
    error = error_of("status = 'ok' and param.C = 1")
    assert "unknown column 'param.C' at position 18" in str(error)
    assert caret_at(error) == 18


def test_namespace_without_key():
    error = error_of("metrics. > 1")
    assert str(error).startswith("column 'metrics.' at position 0 has no key")
    assert "metrics.<key>" in str(error)


def test_missing_operator():
    error = error_of("metrics.f1 0.8")
    assert str(error).startswith(
        "unexpected token '0.8' at position 11: expected a comparison operator"
    )
    assert caret_at(error) == 11


def test_trailing_token_after_complete_expression():
    error = error_of("status = 'ok' kind = 'x'")
    assert "unexpected token 'kind' at position 14: expected 'and', 'or'" in str(error)
    error = error_of("status = 'ok')")
    assert "unexpected token ')' at position 13" in str(error)


def test_unclosed_parenthesis_says_which():
    error = error_of("(status = 'ok' or kind = 'x'")
    assert "unexpected end of expression at position 28" in str(error)
    assert "')' to close '(' at position 0" in str(error)


def test_keyword_where_a_column_is_expected():
    error = error_of("status = 'ok' and or kind = 'x'")
    assert str(error).startswith("unexpected token 'or' at position 18: expected a column")


def test_string_token_is_named_with_its_quotes():
    error = error_of("status = 'a' 'b'")
    assert "unexpected token 'b' at position 13" in str(error)


def test_column_compared_with_column_is_rejected():
    error = error_of("metrics.a > metrics.b")
    assert "unexpected token 'metrics.b' at position 12: expected a value" in str(error)


def test_literal_compared_with_literal_is_rejected():
    error = error_of("1 = 1")
    assert "unexpected token '1' at position 4: expected a column" in str(error)


def test_bad_in_and_like():
    assert "expected '(' starting a list" in str(error_of("status in 'ok'"))
    assert "unexpected token ')' at position 11: expected a value" in str(error_of("status in ()"))
    error = error_of("status in ('a' 'b')")
    assert "unexpected token 'b' at position 15: expected ',' or ')'" in str(error)
    assert "expected a quoted pattern" in str(error_of("name like 3"))
    assert "expected 'in' or 'like' after 'not'" in str(error_of("name not = 'x'"))


def test_unexpected_character():
    error = error_of("metrics.f1 > 0.8 & name = 'x'")
    assert str(error).startswith("unexpected character '&' at position 17")
    assert caret_at(error) == 17
    error = error_of("params.größe = 1")
    assert str(error).startswith("unexpected character 'ö' at position 9: backquote a column")
    assert parse("`params.größe` = 1").column == Column("params", "größe", 0)


@pytest.mark.parametrize(
    "attempt",
    [
        "x'; DROP TABLE runs; --",
        "name = 'x'; DROP TABLE runs; --",
        "name = 'x' or 1=1",
        "name = 'x' -- comment",
        "name = 'x' union select * from runs",
        "params.a = 1); DROP TABLE runs; --",
    ],
)
def test_sql_injection_attempts_raise(attempt):
    with pytest.raises(FilterError):
        parse(attempt)


def test_injection_inside_a_string_is_only_a_value():
    tree = parse("name = 'x''; DROP TABLE runs; --'")
    assert tree == cmp(None, "name", 0, "=", "x'; DROP TABLE runs; --")


def test_deep_nesting_is_a_filter_error_not_a_recursion_error():
    ok = "(" * MAX_OPERATORS + "status = 'ok'" + ")" * MAX_OPERATORS
    assert parse(ok) == cmp(None, "status", MAX_OPERATORS, "=", "ok")
    error = error_of("(" * 5000 + "status = 'ok'" + ")" * 5000)
    assert str(error).startswith(f"expression too complex at position {MAX_OPERATORS}")
    assert "expression too complex" in str(error_of("not " * 5000 + "status = 'ok'"))


def test_filter_error_is_a_value_error():
    with pytest.raises(ValueError):
        parse("foo = 1")


def test_import_is_cheap():
    code = "import sys, mlops_nb.filters; print(sorted({'sqlite3', 'pandas'} & set(sys.modules)))"
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root
    )
    assert out.stdout.strip() == "[]"
