"""The expression language: tokens, precedence, printing, and errors with their positions."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fugong.policies.engine import ExpressionError, parse, tokenize, unparse
from fugong.policies.engine import expr as ex

from .conftest import evaluate_expr


def test_tokens_carry_line_and_column() -> None:
    toks = tokenize("a >= 1_000\n  and b")
    assert [(t.kind, t.text, t.line, t.column) for t in toks] == [
        ("NAME", "a", 1, 1),
        ("OP", ">=", 1, 3),
        ("NUMBER", "1000", 1, 6),
        ("KEYWORD", "and", 2, 3),
        ("NAME", "b", 2, 7),
        ("EOF", "", 2, 8),
    ]


@pytest.mark.parametrize(
    ("source", "printed"),
    [
        ("1 + 2 * 3", "1 + 2 * 3"),
        ("(1 + 2) * 3", "(1 + 2) * 3"),
        ("a - (b - c)", "a - (b - c)"),
        ("a - b - c", "a - b - c"),
        ("a / (b * c)", "a / (b * c)"),
        ("not a and b or c", "not a and b or c"),
        ("not (a and b)", "not (a and b)"),
        ("a or b and c", "a or b and c"),
        ("(a or b) and c", "(a or b) and c"),
        ("-x * 2", "-x * 2"),
        ("x + 1 > y * 2", "x + 1 > y * 2"),
        ("if a then 1 else if b then 2 else 3", "if a then 1 else if b then 2 else 3"),
        ("where(a, 1, 2)", "if a then 1 else 2"),
        ('size in ["small", "micro"]', 'size in ["small", "micro"]'),
        ("size not in ['large']", 'size not in ["large"]'),
        ('d < date("2020-02-10")', 'd < date("2020-02-10")'),
        ("min(a, 2.5, param.cap)", "min(a, 2.5, param.cap)"),
        ("floor(x / 3)  # comment", "floor(x / 3)"),
    ],
)
def test_round_trip_keeps_structure(source: str, printed: str) -> None:
    node = parse(source)
    assert unparse(node) == printed
    assert unparse(parse(printed)) == printed


def test_precedence_shapes_the_tree() -> None:
    node = parse("a + b * c == d and not e or f")
    assert isinstance(node, ex.BinOp) and node.op == "or"
    left = node.left
    assert isinstance(left, ex.BinOp) and left.op == "and"
    cmp = left.left
    assert isinstance(cmp, ex.BinOp) and cmp.op == "=="
    add = cmp.left
    assert isinstance(add, ex.BinOp) and add.op == "+"
    assert isinstance(add.right, ex.BinOp) and add.right.op == "*"
    assert isinstance(left.right, ex.Not)


def test_arithmetic_precedence_evaluates() -> None:
    values, _ = evaluate_expr("1 + 2 * 3 - 8 / 4 / 2", x=[0])
    assert values == [6.0]
    values, _ = evaluate_expr("-(2 - 5) * 2", x=[0])
    assert values == [6.0]


def test_date_literal_and_arithmetic() -> None:
    node = parse('date("2020-02-10")')
    assert node == ex.DateLit(1, 1, dt.date(2020, 2, 10))
    days, _ = evaluate_expr(
        'd - date("2020-02-01")', d=[dt.date(2020, 2, 10), dt.date(2020, 1, 31)]
    )
    assert days == [9.0, -1.0]
    before, _ = evaluate_expr(
        'd + 1 < date("2020-02-10")', d=[dt.date(2020, 2, 8), dt.date(2020, 2, 9)]
    )
    assert before == [True, False]


@pytest.mark.parametrize(
    ("source", "line", "column", "fragment"),
    [
        ("a +", 1, 4, "expected a value"),
        ("a = 1", 1, 3, "compare with '=='"),
        ("1 < a < 3", 1, 7, "do not chain"),
        ("(a", 1, 3, "expected ')'"),
        ("a b", 1, 3, "unexpected text"),
        ("", 1, 1, "empty expression"),
        ("x and\n  y $", 2, 5, "unexpected character '$'"),
        ("'abc", 1, 1, "unterminated string"),
        ("foo(1)", 1, 1, "unknown function 'foo'"),
        ("min(1)", 1, 1, "at least 2"),
        ("floor(1, 2)", 1, 1, "takes 1"),
        ('date("2020-02-30")', 1, 6, "not a date"),
        ('date("20200210")', 1, 6, "not a date"),
        ("date(x)", 1, 6, "string literal"),
        ("if a then 1", 1, 12, "expected 'else'"),
        ("a in []", 1, 7, "at least one item"),
        ("1.2.3", 1, 4, "attribute access"),
        ("12abc", 1, 1, "malformed number"),
        ("param", 1, 6, "expected '.'"),
        ("param.1", 1, 7, "parameter name"),
    ],
)
def test_syntax_errors_name_line_and_column(
    source: str, line: int, column: int, fragment: str
) -> None:
    with pytest.raises(ExpressionError) as info:
        parse(source)
    assert (info.value.line, info.value.column) == (line, column)
    assert fragment in info.value.reason
    assert f"line {line}, column {column}" in str(info.value)


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("__import__('os')", "underscore"),
        ("_x", "underscore"),
        ("a__b", "'__'"),
        ("().__class__", "underscore"),
        ("()", "expected a value"),
        ("(1).__class__", "underscore"),
        ("(1).real", "attribute access"),
        ("x.__class__", "underscore"),
        ("x.real", "attribute access"),
        ("os.system('ls')", "attribute access"),
        ("param.a.b", "attribute access"),
        ("lambda: 1", "unexpected character ':'"),
        ("lambda x: x", "unexpected character ':'"),
        ("lambda x", "unexpected text"),
        ("eval('1')", "unknown function 'eval'"),
        ("exec('1')", "unknown function 'exec'"),
        ("open('/etc/passwd')", "unknown function 'open'"),
        ("getattr(a, 'b')", "unknown function 'getattr'"),
        ("min(1, 2)(3)", "calls on this value"),
        ("x[0]", "indexing"),
        ("[1, 2]", "expected a value"),
        ("{'a': 1}", "unexpected character '{'"),
        ("a if b else c", "unexpected text"),
        ("2 ** 3", "expected a value"),
        ("f'{x}'", "unexpected text"),
        ("x; import os", "unexpected character ';'"),
        ("\\x", "unexpected character"),
        ("a @ b", "unexpected character '@'"),
        ("收入 > 1", "unexpected character"),
    ],
)
def test_anything_reaching_for_python_is_rejected(source: str, fragment: str) -> None:
    with pytest.raises(ExpressionError) as info:
        parse(source)
    assert fragment in info.value.reason
    assert info.value.line >= 1 and info.value.column >= 1


def test_python_eval_is_never_used(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("the engine must not call eval/exec/compile")

    for name in ("eval", "exec", "compile"):
        monkeypatch.setattr(builtins, name, forbidden)
    values, _ = evaluate_expr("if a > 1 then min(a, 10) * 2 else 0", a=[0.5, 3.0, 20.0])
    assert values == [0.0, 6.0, 20.0]


def test_strings_support_escapes() -> None:
    node = parse(r'"a\"b\\c"')
    assert node == ex.Str(1, 1, 'a"b\\c')
    assert unparse(node) == r'"a\"b\\c"'
    with pytest.raises(ExpressionError, match="unknown escape"):
        parse(r'"a\qb"')


def test_names_in_lists_reads() -> None:
    names, params = ex.names_in(parse("if a > param.x then min(b, param.y) else c in [1]"))
    assert names == {"a", "b", "c"}
    assert params == {"x", "y"}


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("n + flag", "cannot combine number and bool"),
        ("flag > true", "does not order bool"),
        ('size > "small"', "does not order text"),
        ("n and flag", "joins true/false"),
        ("not n", "'not' needs"),
        ("-flag", "'-' needs a number"),
        ("if n then 1 else 2", "condition of 'if'"),
        ("if flag then 1 else true", "both branches"),
        ("n == flag", "cannot compare number with bool"),
        ('size == "huge"', "'huge' is not one of"),
        ('size in ["small", "huge"]', "'huge' is not one of"),
        ("n in [1, flag]", "constants only"),
        ('n in [1, "a"]', "this item is text"),
        ("floor(flag)", "needs a number"),
        ("min(n, d)", "all of one type"),
        ("nope > 1", "unknown name 'nope'"),
        ("param.nope", "unknown parameter 'nope'"),
        ("n / 0", "constant zero"),
        ("d * 2", "cannot combine date and number"),
    ],
)
def test_type_errors_point_at_the_node(source: str, fragment: str) -> None:
    with pytest.raises(ExpressionError) as info:
        evaluate_expr(
            source,
            n=[1.0],
            flag=[True],
            size=["small"],
            d=[dt.date(2020, 1, 1)],
        )
    assert fragment in info.value.reason


_PIECES = [
    *"abcxyz_019 .,()[]+-*/<>=!\"'#\n",
    *("and ", "or ", "not ", "if ", "then ", "else ", "in ", "param.", "min(", "date(", "true"),
    "__",
]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=30).map("".join))
def test_parser_only_ever_raises_expression_errors(source: str) -> None:
    try:
        node = parse(source)
    except ExpressionError as exc:
        assert exc.line >= 1 and exc.column >= 1
    else:
        # Whatever parses prints back to something that parses to the same printout.
        assert unparse(parse(unparse(node))) == unparse(node)
