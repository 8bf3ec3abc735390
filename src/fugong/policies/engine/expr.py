"""The measure expression language: tokenizer, recursive-descent parser, AST and printer.

Policy text is data written by officials, so it is never handed to Python's ``eval``/``exec``/
``compile`` or parsed with Python's ``ast``: this module reads a small language of its own and
anything outside it is an :class:`ExpressionError` carrying the line and column.

Grammar (lowest precedence first)::

    expr     := 'if' expr 'then' expr 'else' expr | or
    or       := and ('or' and)*
    and      := not ('and' not)*
    not      := 'not' not | compare
    compare  := sum [('==' | '!=' | '<' | '<=' | '>' | '>=') sum]
              | sum ['not'] 'in' '[' expr (',' expr)* [','] ']'
    sum      := product (('+' | '-') product)*
    product  := unary (('*' | '/') unary)*
    unary    := '-' unary | primary
    primary  := NUMBER | STRING | 'true' | 'false' | NAME | 'param' '.' NAME
              | FUNCTION '(' [expr (',' expr)*] ')' | '(' expr ')'

Comparisons do not chain (``a < b < c`` is an error: write ``a < b and b < c``). Names are ASCII,
start with a letter and contain no double underscore; ``#`` starts a comment to the end of the
line. Numbers may group digits with ``_`` (``1_000_000``). Functions: ``min``, ``max`` (two or
more arguments), ``floor``, ``ceil``, ``abs``, ``where(c, a, b)`` (same as ``if``) and
``date("YYYY-MM-DD")`` (a date constant). ``param.NAME`` is the only dotted form.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

from fugong.policies.engine.errors import ExpressionError

KEYWORDS: Final = frozenset({"and", "or", "not", "if", "then", "else", "in", "true", "false"})
FUNCTIONS: Final = frozenset({"min", "max", "floor", "ceil", "abs", "where", "date"})
COMPARISONS: Final = frozenset({"==", "!=", "<", "<=", ">", ">="})
_TWO_CHAR_OPS: Final = frozenset({"==", "!=", "<=", ">="})
_ONE_CHAR_OPS: Final = frozenset("+-*/()[],.<>")


# --- tokens -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Token:
    """One lexeme. ``kind`` is NUMBER, STRING, NAME, KEYWORD, OP or EOF."""

    kind: str
    text: str
    line: int
    column: int


def tokenize(source: str) -> list[Token]:
    """Split ``source`` into tokens ending with an EOF token, or raise ExpressionError."""
    tokens: list[Token] = []
    i, line, line_start, n = 0, 1, 0, len(source)
    while i < n:
        ch = source[i]
        col = i - line_start + 1
        if ch == "\n":
            i += 1
            line += 1
            line_start = i
        elif ch in " \t\r":
            i += 1
        elif ch == "#":
            while i < n and source[i] != "\n":
                i += 1
        elif _is_digit(ch):
            i = _number(source, i, line, col, tokens)
        elif ch in "\"'":
            i = _string(source, i, line, col, tokens)
        elif ch == "_" or (ch.isascii() and ch.isalpha()):
            j = i
            while j < n and (source[j] == "_" or (source[j].isascii() and source[j].isalnum())):
                j += 1
            word = source[i:j]
            if word.startswith("_"):
                raise ExpressionError(
                    f"names may not start with an underscore: {word!r}", line, col
                )
            if "__" in word:
                raise ExpressionError(f"names may not contain '__': {word!r}", line, col)
            tokens.append(Token("KEYWORD" if word in KEYWORDS else "NAME", word, line, col))
            i = j
        elif source[i : i + 2] in _TWO_CHAR_OPS:
            tokens.append(Token("OP", source[i : i + 2], line, col))
            i += 2
        elif ch in _ONE_CHAR_OPS:
            tokens.append(Token("OP", ch, line, col))
            i += 1
        elif ch == "=":
            raise ExpressionError("'=' is not an operator here; compare with '=='", line, col)
        else:
            raise ExpressionError(f"unexpected character {ch!r}", line, col)
    tokens.append(Token("EOF", "", line, n - line_start + 1))
    return tokens


def _is_digit(c: str) -> bool:
    return c.isascii() and c.isdigit()


def _number(source: str, i: int, line: int, col: int, out: list[Token]) -> int:
    j, n, seen_dot = i, len(source), False
    while j < n:
        c = source[j]
        nxt = source[j + 1] if j + 1 < n else ""
        # '_' groups digits (1_000_000) only between two digits.
        if _is_digit(c) or (c == "_" and _is_digit(nxt) and _is_digit(source[j - 1])):
            j += 1
        elif c == "." and not seen_dot and _is_digit(nxt):
            seen_dot = True
            j += 1
        else:
            break
    if j < n and (source[j] == "_" or (source[j].isascii() and source[j].isalpha())):
        raise ExpressionError(f"malformed number {source[i : j + 1]!r}", line, col)
    out.append(Token("NUMBER", source[i:j].replace("_", ""), line, col))
    return j


_ESCAPES: Final = {"\\": "\\", '"': '"', "'": "'", "n": "\n", "t": "\t"}


def _string(source: str, i: int, line: int, col: int, out: list[Token]) -> int:
    quote, j, n, chars = source[i], i + 1, len(source), []
    while j < n and source[j] != quote:
        c = source[j]
        if c == "\n":
            break
        if c == "\\":
            if j + 1 >= n or source[j + 1] not in _ESCAPES:
                raise ExpressionError("unknown escape in string", line, col + (j - i))
            chars.append(_ESCAPES[source[j + 1]])
            j += 2
            continue
        chars.append(c)
        j += 1
    if j >= n or source[j] != quote:
        raise ExpressionError("unterminated string", line, col)
    out.append(Token("STRING", "".join(chars), line, col))
    return j + 1


# --- AST ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Node:
    """Base of AST nodes; ``line``/``column`` locate the node in its expression text."""

    line: int
    column: int


@dataclass(frozen=True, slots=True)
class Num(Node):
    value: float


@dataclass(frozen=True, slots=True)
class Str(Node):
    value: str


@dataclass(frozen=True, slots=True)
class Bool(Node):
    value: bool


@dataclass(frozen=True, slots=True)
class DateLit(Node):
    value: dt.date


@dataclass(frozen=True, slots=True)
class Name(Node):
    """A fact (input column) or a variable defined by the measure."""

    name: str


@dataclass(frozen=True, slots=True)
class Param(Node):
    name: str


@dataclass(frozen=True, slots=True)
class Neg(Node):
    operand: Node


@dataclass(frozen=True, slots=True)
class Not(Node):
    operand: Node


@dataclass(frozen=True, slots=True)
class BinOp(Node):
    """Arithmetic (``+ - * /``), comparison (``== != < <= > >=``) or logic (``and or``)."""

    op: str
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class If(Node):
    cond: Node
    then: Node
    orelse: Node


@dataclass(frozen=True, slots=True)
class In(Node):
    operand: Node
    items: tuple[Node, ...]
    negated: bool


@dataclass(frozen=True, slots=True)
class Call(Node):
    func: str
    args: tuple[Node, ...]


# --- parser ---------------------------------------------------------------------------------------


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.pos = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.pos]

    def advance(self) -> Token:
        t = self.tokens[self.pos]
        if t.kind != "EOF":
            self.pos += 1
        return t

    def at(self, kind: str, text: str | None = None) -> bool:
        t = self.tok
        return t.kind == kind and (text is None or t.text == text)

    def expect(self, kind: str, text: str, what: str) -> Token:
        if not self.at(kind, text):
            raise self.error(f"expected {what}")
        return self.advance()

    def error(self, message: str, tok: Token | None = None) -> ExpressionError:
        t = tok or self.tok
        found = "end of expression" if t.kind == "EOF" else repr(t.text)
        return ExpressionError(f"{message}, found {found}", t.line, t.column)

    def expr(self) -> Node:
        if self.at("KEYWORD", "if"):
            t = self.advance()
            cond = self.expr()
            self.expect("KEYWORD", "then", "'then'")
            then = self.expr()
            self.expect("KEYWORD", "else", "'else'")
            return If(t.line, t.column, cond, then, self.expr())
        return self.or_()

    def or_(self) -> Node:
        left = self.and_()
        while self.at("KEYWORD", "or"):
            t = self.advance()
            left = BinOp(t.line, t.column, "or", left, self.and_())
        return left

    def and_(self) -> Node:
        left = self.not_()
        while self.at("KEYWORD", "and"):
            t = self.advance()
            left = BinOp(t.line, t.column, "and", left, self.not_())
        return left

    def not_(self) -> Node:
        if self.at("KEYWORD", "not"):
            t = self.advance()
            return Not(t.line, t.column, self.not_())
        return self.compare()

    def compare(self) -> Node:
        left = self.sum()
        t = self.tok
        if t.kind == "OP" and t.text in COMPARISONS:
            self.advance()
            node: Node = BinOp(t.line, t.column, t.text, left, self.sum())
        elif self.at("KEYWORD", "in") or (
            self.at("KEYWORD", "not") and self.tokens[self.pos + 1].text == "in"
        ):
            negated = self.advance().text == "not"
            if negated:
                self.advance()
            node = In(t.line, t.column, left, self.list_(), negated)
        else:
            return left
        nxt = self.tok
        if (nxt.kind == "OP" and nxt.text in COMPARISONS) or nxt.text == "in":
            raise ExpressionError(
                "comparisons do not chain; join them with 'and'", nxt.line, nxt.column
            )
        return node

    def list_(self) -> tuple[Node, ...]:
        self.expect("OP", "[", "'[' after 'in'")
        items: list[Node] = []
        while not self.at("OP", "]"):
            items.append(self.expr())
            if not self.at("OP", ","):
                break
            self.advance()
        self.expect("OP", "]", "',' or ']'")
        if not items:
            raise self.error("an 'in' list needs at least one item", self.tokens[self.pos - 1])
        return tuple(items)

    def sum(self) -> Node:
        left = self.product()
        while self.at("OP", "+") or self.at("OP", "-"):
            t = self.advance()
            left = BinOp(t.line, t.column, t.text, left, self.product())
        return left

    def product(self) -> Node:
        left = self.unary()
        while self.at("OP", "*") or self.at("OP", "/"):
            t = self.advance()
            left = BinOp(t.line, t.column, t.text, left, self.unary())
        return left

    def unary(self) -> Node:
        if self.at("OP", "-"):
            t = self.advance()
            return Neg(t.line, t.column, self.unary())
        node = self.primary()
        if self.at("OP", "."):
            raise ExpressionError(
                "attribute access is not allowed (only param.NAME)", self.tok.line, self.tok.column
            )
        if self.at("OP", "(") or self.at("OP", "["):
            what = "calls" if self.tok.text == "(" else "indexing"
            raise ExpressionError(
                f"{what} on this value are not allowed", self.tok.line, self.tok.column
            )
        return node

    def primary(self) -> Node:
        t = self.tok
        if t.kind == "NUMBER":
            self.advance()
            return Num(t.line, t.column, float(t.text))
        if t.kind == "STRING":
            self.advance()
            return Str(t.line, t.column, t.text)
        if t.kind == "KEYWORD" and t.text in ("true", "false"):
            self.advance()
            return Bool(t.line, t.column, t.text == "true")
        if t.kind == "OP" and t.text == "(":
            self.advance()
            inner = self.expr()
            self.expect("OP", ")", "')'")
            return inner
        if t.kind == "NAME":
            self.advance()
            if t.text == "param":
                self.expect("OP", ".", "'.' after 'param'")
                name = self.tok
                if name.kind != "NAME":
                    raise self.error("expected a parameter name after 'param.'")
                self.advance()
                return Param(t.line, t.column, name.text)
            if self.at("OP", "("):
                return self.call(t)
            return Name(t.line, t.column, t.text)
        raise self.error("expected a value")

    def call(self, t: Token) -> Node:
        if t.text not in FUNCTIONS:
            known = ", ".join(sorted(FUNCTIONS))
            raise ExpressionError(f"unknown function {t.text!r} (known: {known})", t.line, t.column)
        self.advance()
        args: list[Node] = []
        while not self.at("OP", ")"):
            args.append(self.expr())
            if not self.at("OP", ","):
                break
            self.advance()
        self.expect("OP", ")", "',' or ')'")
        arity = {"floor": (1, 1), "ceil": (1, 1), "abs": (1, 1), "where": (3, 3), "date": (1, 1)}
        lo, hi = arity.get(t.text, (2, 99))
        if not lo <= len(args) <= hi:
            want = str(lo) if lo == hi else f"at least {lo}"
            raise ExpressionError(
                f"{t.text}() takes {want} argument(s), got {len(args)}", t.line, t.column
            )
        if t.text == "where":
            return If(t.line, t.column, args[0], args[1], args[2])
        if t.text == "date":
            arg = args[0]
            if not isinstance(arg, Str):
                raise ExpressionError(
                    'date() takes a string literal such as date("2020-02-10")', arg.line, arg.column
                )
            try:
                day = dt.date.fromisoformat(arg.value)
            except ValueError:
                raise ExpressionError(
                    f"not a date (YYYY-MM-DD): {arg.value!r}", arg.line, arg.column
                ) from None
            if len(arg.value) != 10:
                raise ExpressionError(
                    f"not a date (YYYY-MM-DD): {arg.value!r}", arg.line, arg.column
                )
            return DateLit(t.line, t.column, day)
        return Call(t.line, t.column, t.text, tuple(args))


def parse(source: str) -> Node:
    """Parse one expression; raise ExpressionError (with line and column) if it is not one."""
    parser = _Parser(tokenize(source))
    if parser.at("EOF"):
        raise parser.error("empty expression")
    node = parser.expr()
    if not parser.at("EOF"):
        raise parser.error("unexpected text after the expression")
    return node


# --- printing -------------------------------------------------------------------------------------

_PRECEDENCE: Final = {
    "if": 0,
    "or": 1,
    "and": 2,
    "not": 3,
    "cmp": 4,
    "+": 5,
    "-": 5,
    "*": 6,
    "/": 6,
    "neg": 7,
    "atom": 8,
}


def format_number(value: float) -> str:
    """Print a number the way an official writes it: no trailing ``.0``, no exponent."""
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.10f}".rstrip("0").rstrip(".")


def _level(node: Node) -> int:
    if isinstance(node, If):
        return _PRECEDENCE["if"]
    if isinstance(node, Not):
        return _PRECEDENCE["not"]
    if isinstance(node, In):
        return _PRECEDENCE["cmp"]
    if isinstance(node, BinOp):
        return _PRECEDENCE.get(node.op, _PRECEDENCE["cmp"])
    if isinstance(node, Neg):
        return _PRECEDENCE["neg"]
    return _PRECEDENCE["atom"]


def unparse(node: Node, leaf: dict[str, str] | None = None) -> str:
    """Print ``node`` back as source with minimal parentheses.

    ``leaf`` maps ``NAME`` and ``param.NAME`` to replacement text: explanations use it to print a
    formula with the numbers it read in place of the names.
    """
    subst = leaf or {}

    def wrap(child: Node, min_level: int) -> str:
        text = go(child)
        return f"({text})" if _level(child) < min_level else text

    def go(n: Node) -> str:
        if isinstance(n, Num):
            return format_number(n.value)
        if isinstance(n, Str):
            return '"' + n.value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(n, Bool):
            return "true" if n.value else "false"
        if isinstance(n, DateLit):
            return f'date("{n.value.isoformat()}")'
        if isinstance(n, Name):
            return subst.get(n.name, n.name)
        if isinstance(n, Param):
            key = f"param.{n.name}"
            return subst.get(key, key)
        if isinstance(n, Neg):
            return "-" + wrap(n.operand, _PRECEDENCE["neg"])
        if isinstance(n, Not):
            return "not " + wrap(n.operand, _PRECEDENCE["not"])
        if isinstance(n, If):
            return f"if {go(n.cond)} then {go(n.then)} else {go(n.orelse)}"
        if isinstance(n, In):
            items = ", ".join(go(i) for i in n.items)
            kw = "not in" if n.negated else "in"
            return f"{wrap(n.operand, _PRECEDENCE['cmp'] + 1)} {kw} [{items}]"
        if isinstance(n, Call):
            return f"{n.func}({', '.join(go(a) for a in n.args)})"
        assert isinstance(n, BinOp)
        lvl = _level(n)
        # Left-associative: the right operand needs brackets at equal precedence (a - (b - c)),
        # and comparisons never chain, so both sides of one sit strictly above it.
        left_min = lvl + 1 if n.op in COMPARISONS else lvl
        return f"{wrap(n.left, left_min)} {n.op} {wrap(n.right, lvl + 1)}"

    return go(node)


def names_in(node: Node) -> tuple[set[str], set[str]]:
    """Return the (names, parameter names) that ``node`` reads."""
    names: set[str] = set()
    params: set[str] = set()
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, Name):
            names.add(n.name)
        elif isinstance(n, Param):
            params.add(n.name)
        elif isinstance(n, Neg | Not):
            stack.append(n.operand)
        elif isinstance(n, BinOp):
            stack.extend((n.left, n.right))
        elif isinstance(n, If):
            stack.extend((n.cond, n.then, n.orelse))
        elif isinstance(n, In):
            stack.append(n.operand)
            stack.extend(n.items)
        elif isinstance(n, Call):
            stack.extend(n.args)
    return names, params
