"""Type-check expressions and compile them to vectorised, three-valued numpy closures.

Every compiled expression maps an evaluation context (one table, one date) to a :class:`V`: the
values for all rows at once plus ``unk``, a ``uint64`` array whose set bits name the unknown
inputs a row's value depends on (bit *k* is the measure's *k*-th source: a fact, or a division by
zero). ``unk is None`` means "known everywhere" and skips all mask work, so complete data pays
nothing for the unknown machinery.

Three-valued (Kleene) logic: ``false and unknown`` is false, ``true or unknown`` is true; an
``if`` whose condition is unknown is unknown unless both branches agree. Arithmetic and
comparisons propagate unknown. Where a row is unknown its value slot is meaningless filler.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from fugong.policies.engine import expr as ex
from fugong.policies.engine.errors import EvaluationError, ExpressionError
from fugong.policies.engine.params import Parameter, Period
from fugong.policies.engine.table import EPOCH, Column, FactSpec, Table

BOOL: Final = "bool"
NUM: Final = "number"
DATE: Final = "date"
STR: Final = "text"
MAX_SOURCES: Final = 64  # one bit each in a uint64 mask
_U64 = np.uint64

Bits = NDArray[np.uint64]


@dataclass(slots=True)
class V:
    """Values for every row (or one scalar for all), unknown bits, and categories for text."""

    val: Any
    unk: Bits | None = None
    cats: tuple[str, ...] | None = None


@dataclass
class Ctx:
    """What one evaluation reads: the table, the parameter periods in force, per-run caches."""

    table: Table
    periods: Mapping[str, Period]
    measure: str = ""
    cache: dict[str, V] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return self.table.n

    def column(self, name: str) -> Column:
        col = self.table.columns.get(name)
        if col is None:
            raise EvaluationError(
                f"the enterprise table has no column {name!r}, needed by {self.measure}"
            )
        return col


Fn = Callable[[Ctx], V]


@dataclass
class Sources:
    """Names the bits of one measure's unknown masks (facts and divisions by zero)."""

    measure: str
    names: list[str] = field(default_factory=list)

    def bit(self, name: str) -> int:
        if name in self.names:
            return self.names.index(name)
        if len(self.names) >= MAX_SOURCES:
            raise EvaluationError(f"measure {self.measure} reads more than {MAX_SOURCES} inputs")
        self.names.append(name)
        return len(self.names) - 1

    def decode(self, bits: int) -> list[str]:
        return [name for k, name in enumerate(self.names) if bits >> k & 1]


@dataclass
class Env:
    """Compile-time scope of one measure: facts, parameters, earlier variables, the bit table."""

    facts: Mapping[str, FactSpec]
    params: Mapping[str, Parameter]
    sources: Sources
    variables: dict[str, tuple[Fn, str, tuple[str, ...] | None]] = field(default_factory=dict)
    facts_read: set[str] = field(default_factory=set)


# --- mask helpers ---------------------------------------------------------------------------------


def _or(a: Bits | None, b: Bits | None) -> Bits | None:
    if a is None:
        return b
    if b is None:
        return a
    return a | b


def known(v: V) -> NDArray[np.bool_] | None:
    """Rows where ``v`` is known (None: all of them)."""
    return None if v.unk is None else v.unk == 0


def _fill(unk: Bits | None, n: int) -> Bits:
    return np.zeros(n, _U64) if unk is None else unk


def _unify(a: V, b: V) -> tuple[Any, Any, tuple[str, ...]]:
    """Re-code two text values onto one category list so codes compare like the strings."""
    ca, cb = a.cats or (), b.cats or ()
    if ca == cb:
        return a.val, b.val, ca
    union = tuple(dict.fromkeys(ca + cb))
    lut_b = np.array([union.index(c) for c in cb], dtype=np.int32)
    return a.val, lut_b[b.val], union


# --- operators ------------------------------------------------------------------------------------


def and3(a: V, b: V) -> V:
    """Kleene ``and``: false if either side is known false, unknown if undecided, else true."""
    val = a.val & b.val
    if a.unk is None and b.unk is None:
        return V(val)
    # Known false on either side decides the result, whatever the other side's unknowns.
    decided = np.zeros(np.shape(val), np.bool_)
    if a.unk is None:
        decided |= ~a.val
    else:
        decided |= ~a.val & (a.unk == 0)
    if b.unk is None:
        decided |= ~b.val
    else:
        decided |= ~b.val & (b.unk == 0)
    unk = _or(a.unk, b.unk)
    assert unk is not None
    return V(val, np.where(decided, _U64(0), unk))


def or3(a: V, b: V) -> V:
    """Kleene ``or``: true if either side is known true, unknown if undecided, else false."""
    val = a.val | b.val
    if a.unk is None and b.unk is None:
        return V(val)
    decided = np.zeros(np.shape(val), np.bool_)
    decided |= a.val if a.unk is None else a.val & (a.unk == 0)
    decided |= b.val if b.unk is None else b.val & (b.unk == 0)
    unk = _or(a.unk, b.unk)
    assert unk is not None
    return V(val, np.where(decided, _U64(0), unk))


def _if(c: V, t: V, e: V, n: int, kind: str) -> V:
    if np.ndim(c.val) == 0 and c.unk is None:
        return t if bool(c.val) else e
    if kind == STR:
        tv, ev, cats = _unify(t, e)
    else:
        tv, ev, cats = t.val, e.val, None
    val = np.where(c.val, tv, ev)
    if t.unk is None and e.unk is None:
        unk = None
    elif t.unk is e.unk:
        unk = t.unk
    else:
        unk = np.where(c.val, _fill(t.unk, n), _fill(e.unk, n))
    if c.unk is not None:
        c_unknown = c.unk != 0
        # An unknown condition still decides nothing when both branches give the same known value.
        agree = np.asarray(tv == ev)
        if t.unk is not None:
            agree = agree & (t.unk == 0)
        if e.unk is not None:
            agree = agree & (e.unk == 0)
        blame = c.unk | _fill(t.unk, n) | _fill(e.unk, n)
        unk = np.where(c_unknown & ~agree, blame, _fill(unk, n))
    return V(val, unk, cats)


_ARITH: Final[dict[str, Callable[[Any, Any], Any]]] = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
}
_CMP: Final[dict[str, Callable[[Any, Any], Any]]] = {
    "==": np.equal,
    "!=": np.not_equal,
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
}


def _divide(a: V, b: V, bit: int, n: int) -> V:
    unk = _or(a.unk, b.unk)
    zero = np.equal(b.val, 0)
    if not np.any(zero):
        return V(np.divide(a.val, b.val), unk)
    # Division by zero is not a number we can pay out on: the row is unknown, and the bit says
    # which division (not which fact) made it so. Unknown divisors are filler, not zero.
    zero = np.broadcast_to(zero, (n,))
    if b.unk is not None:
        zero = zero & (b.unk == 0)
    safe = np.where(np.equal(b.val, 0), 1.0, b.val)
    div_bits = np.where(zero, _U64(1 << bit), _U64(0))
    return V(np.divide(a.val, safe), _or(unk, div_bits))


# --- compiler -------------------------------------------------------------------------------------


def _err(node: ex.Node, message: str) -> ExpressionError:
    return ExpressionError(message, node.line, node.column)


def _is_constant(node: ex.Node) -> bool:
    if isinstance(node, ex.Neg):
        return _is_constant(node.operand)
    return isinstance(node, ex.Num | ex.Str | ex.Bool | ex.DateLit)


def _constant(node: ex.Node) -> Any:
    if isinstance(node, ex.Neg):
        return -_constant(node.operand)
    if isinstance(node, ex.DateLit):
        return (node.value - EPOCH).days
    assert isinstance(node, ex.Num | ex.Str | ex.Bool)
    return node.value


def compile_expr(node: ex.Node, env: Env) -> tuple[Fn, str, tuple[str, ...] | None]:
    """Type-check ``node`` and return (closure, type, enum values if it is an enum fact)."""
    fn, kind, enum = _compile(node, env)
    return fn, kind, enum


def _compile(node: ex.Node, env: Env) -> tuple[Fn, str, tuple[str, ...] | None]:
    if isinstance(node, ex.Num):
        num = V(np.float64(node.value))
        return (lambda ctx: num), NUM, None
    if isinstance(node, ex.Bool):
        flag = V(np.bool_(node.value))
        return (lambda ctx: flag), BOOL, None
    if isinstance(node, ex.DateLit):
        day = V(np.int64((node.value - EPOCH).days))
        return (lambda ctx: day), DATE, None
    if isinstance(node, ex.Str):
        text = V(np.int32(0), None, (node.value,))
        return (lambda ctx: text), STR, None
    if isinstance(node, ex.Name):
        return _compile_name(node, env)
    if isinstance(node, ex.Param):
        return _compile_param(node, env), NUM, None
    if isinstance(node, ex.Neg):
        inner, kind, _ = _compile(node.operand, env)
        if kind != NUM:
            raise _err(node, f"'-' needs a number, got {kind}")
        return (lambda ctx: _neg(inner(ctx))), NUM, None
    if isinstance(node, ex.Not):
        inner, kind, _ = _compile(node.operand, env)
        if kind != BOOL:
            raise _err(node, f"'not' needs a true/false value, got {kind}")
        return (lambda ctx: _not(inner(ctx))), BOOL, None
    if isinstance(node, ex.If):
        return _compile_if(node, env)
    if isinstance(node, ex.In):
        return _compile_in(node, env), BOOL, None
    if isinstance(node, ex.Call):
        call_fn, call_kind = _compile_call(node, env)
        return call_fn, call_kind, None
    assert isinstance(node, ex.BinOp)
    return _compile_binop(node, env)


def _neg(v: V) -> V:
    return V(np.negative(v.val), v.unk)


def _not(v: V) -> V:
    return V(np.logical_not(v.val), v.unk)


def _compile_name(node: ex.Name, env: Env) -> tuple[Fn, str, tuple[str, ...] | None]:
    name = node.name
    if name in env.variables:
        vfn, vkind, venum = env.variables[name]
        key = f"var:{name}"

        def read_var(ctx: Ctx) -> V:
            cached = ctx.cache.get(key)
            if cached is None:
                cached = ctx.cache[key] = vfn(ctx)
            return cached

        return read_var, vkind, venum
    spec = env.facts.get(name)
    if spec is None or spec.kind == "id":
        raise _err(node, f"unknown name {name!r}: not an input fact or a variable of this measure")
    env.facts_read.add(name)
    return _fact_reader(name, env.sources.bit(name)), _fact_kind(spec), spec.values or None


def _fact_kind(spec: FactSpec) -> str:
    return {"bool": BOOL, "number": NUM, "date": DATE}.get(spec.kind, STR)


def _fact_reader(name: str, bit: int) -> Fn:
    key = f"fact:{name}"
    one = _U64(1 << bit)

    def read(ctx: Ctx) -> V:
        cached = ctx.cache.get(key)
        if cached is None:
            col = ctx.column(name)
            unk = None if col.unknown is None else col.unknown * one
            cached = ctx.cache[key] = V(col.values, unk, col.categories)
        return cached

    return read


def _compile_param(node: ex.Param, env: Env) -> Fn:
    param = env.params.get(node.name)
    if param is None:
        raise _err(node, f"unknown parameter {node.name!r}")
    name = node.name
    split = param.split_by
    reader = None
    if split is not None:
        env.facts_read.add(split)
        reader = _fact_reader(split, env.sources.bit(split))
    key = f"param:{name}"

    def read(ctx: Ctx) -> V:
        cached = ctx.cache.get(key)
        if cached is not None:
            return cached
        period = ctx.periods[name]
        if period.value is not None or reader is None:
            assert period.value is not None
            out = V(np.float64(period.value))
        else:
            by = reader(ctx)
            cats = by.cats or ()
            lut = np.array([period.for_category(c) for c in cats], dtype=np.float64)
            out = V(lut[by.val], by.unk)
        ctx.cache[key] = out
        return out

    return read


def _compile_if(node: ex.If, env: Env) -> tuple[Fn, str, tuple[str, ...] | None]:
    cfn, ckind, _ = _compile(node.cond, env)
    if ckind != BOOL:
        raise _err(node.cond, f"the condition of 'if' must be true/false, got {ckind}")
    tfn, tkind, tenum = _compile(node.then, env)
    efn, ekind, _ = _compile(node.orelse, env)
    if tkind != ekind:
        raise _err(node, f"both branches of 'if' must have one type, got {tkind} and {ekind}")

    def run(ctx: Ctx) -> V:
        return _if(cfn(ctx), tfn(ctx), efn(ctx), ctx.n, tkind)

    return run, tkind, tenum


def _check_enum_literal(enum: tuple[str, ...] | None, other: ex.Node) -> None:
    if enum and isinstance(other, ex.Str) and other.value not in enum:
        raise _err(other, f"{other.value!r} is not one of {', '.join(enum)}")


def _compile_in(node: ex.In, env: Env) -> Fn:
    afn, kind, enum = _compile(node.operand, env)
    items: list[Any] = []
    for item in node.items:
        if not _is_constant(item):
            raise _err(item, "'in' lists hold constants only")
        _, ikind, _ = _compile(item, env)
        if ikind != kind:
            raise _err(item, f"this item is {ikind} but the value tested is {kind}")
        _check_enum_literal(enum, item)
        items.append(_constant(item))
    negated = node.negated

    def run(ctx: Ctx) -> V:
        a = afn(ctx)
        if kind == STR:
            lut = np.array([c in items for c in (a.cats or ())], dtype=np.bool_)
            hit = lut[a.val]
        else:
            hit = np.isin(a.val, np.array(items))
        return V(~hit if negated else hit, a.unk)

    return run


def _compile_call(node: ex.Call, env: Env) -> tuple[Fn, str]:
    compiled = [_compile(a, env) for a in node.args]
    fns = [fn for fn, _, _ in compiled]
    kinds = [kind for _, kind, _ in compiled]
    if node.func in ("min", "max"):
        if kinds[0] not in (NUM, DATE) or any(k != kinds[0] for k in kinds):
            raise _err(node, f"{node.func}() needs numbers or dates, all of one type")
        reduce = np.minimum if node.func == "min" else np.maximum

        def run_minmax(ctx: Ctx) -> V:
            vals = [fn(ctx) for fn in fns]
            out = vals[0]
            for v in vals[1:]:
                out = V(reduce(out.val, v.val), _or(out.unk, v.unk))
            return out

        return run_minmax, kinds[0]
    if kinds[0] != NUM:
        raise _err(node, f"{node.func}() needs a number, got {kinds[0]}")
    ufunc = {"floor": np.floor, "ceil": np.ceil, "abs": np.abs}[node.func]
    arg = fns[0]

    def run_unary(ctx: Ctx) -> V:
        v = arg(ctx)
        return V(ufunc(v.val), v.unk)

    return run_unary, NUM


def _compile_binop(node: ex.BinOp, env: Env) -> tuple[Fn, str, tuple[str, ...] | None]:
    lfn, lkind, lenum = _compile(node.left, env)
    rfn, rkind, renum = _compile(node.right, env)
    op = node.op
    if op in ("and", "or"):
        if lkind != BOOL or rkind != BOOL:
            raise _err(node, f"'{op}' joins true/false values, got {lkind} and {rkind}")
        logic = and3 if op == "and" else or3
        return (lambda ctx: logic(lfn(ctx), rfn(ctx))), BOOL, None
    if op in ex.COMPARISONS:
        if lkind != rkind:
            raise _err(node, f"cannot compare {lkind} with {rkind}")
        if lkind in (STR, BOOL) and op not in ("==", "!="):
            raise _err(node, f"'{op}' does not order {lkind} values; use == or !=")
        _check_enum_literal(lenum, node.right)
        _check_enum_literal(renum, node.left)
        cmp = _CMP[op]
        if lkind == STR:

            def run_text(ctx: Ctx) -> V:
                a, b = lfn(ctx), rfn(ctx)
                av, bv, _ = _unify(a, b)
                return V(cmp(av, bv), _or(a.unk, b.unk))

            return run_text, BOOL, None

        def run_cmp(ctx: Ctx) -> V:
            a, b = lfn(ctx), rfn(ctx)
            return V(cmp(a.val, b.val), _or(a.unk, b.unk))

        return run_cmp, BOOL, None
    kind = _arith_kind(node, lkind, rkind)
    if op == "/":
        if _is_constant(node.right) and _constant(node.right) == 0:
            raise _err(node.right, "division by the constant zero")
        bit = env.sources.bit(f"division by zero in {ex.unparse(node)}")
        return (lambda ctx: _divide(lfn(ctx), rfn(ctx), bit, ctx.n)), kind, None
    arith = _ARITH[op]

    def run_arith(ctx: Ctx) -> V:
        a, b = lfn(ctx), rfn(ctx)
        return V(arith(a.val, b.val), _or(a.unk, b.unk))

    return run_arith, kind, None


def _arith_kind(node: ex.BinOp, lkind: str, rkind: str) -> str:
    op = node.op
    if lkind == NUM and rkind == NUM:
        return NUM
    if op == "+" and {lkind, rkind} == {DATE, NUM}:
        return DATE
    if op == "-" and lkind == DATE and rkind == NUM:
        return DATE
    if op == "-" and lkind == DATE and rkind == DATE:
        return NUM  # days between two dates
    raise _err(node, f"'{op}' cannot combine {lkind} and {rkind}")


def as_array(v: V, n: int) -> NDArray[Any]:
    """The values of ``v`` as a length-``n`` array (constants broadcast)."""
    arr = np.asarray(v.val)
    return np.broadcast_to(arr, (n,)) if arr.ndim == 0 else arr
