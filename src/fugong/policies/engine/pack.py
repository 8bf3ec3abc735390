"""Packs: measures, dated parameters and input facts as YAML files with their sources.

Layout of a pack directory::

    pack.yaml          id, title, version, jurisdiction, default_at, source documents, measure order
    facts.yaml         the input columns: type, label, allowed values, minimum
    parameters/*.yaml  dated parameters (see params.py), each period with its source
    measures/<id>.yaml one measure in the city's fixed schema + variables, conditions, amount
    tests/*.yaml       scenario tests (see scenarios.py)

Loading checks everything it can before any enterprise is seen: schema, source references,
expression syntax and types, parameter dates. A broken pack raises PackError naming the file and
line. Measure fields and the city's schema (政策点 / 支持对象 / 支持方式 / 支持内容 / 支持条件 /
需提供材料 / 受理部门 / 办理时限) map to: ``title``, ``target``, ``mode``, ``content``,
``conditions_text``, ``documents``, ``office``, ``time_limit``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from fugong.policies.engine import expr as ex
from fugong.policies.engine.errors import ExpressionError, PackError
from fugong.policies.engine.params import Parameter, Period
from fugong.policies.engine.table import FACT_TYPES, FactSpec
from fugong.policies.engine.vector import BOOL, NUM, Env, Fn, Sources, compile_expr
from fugong.policies.engine.yamlsrc import YList, YMap, load_yaml

PACKS_DIR: Final = Path(__file__).resolve().parent.parent / "packs"
MODES: Final = ("automatic", "application")
_ID_RE: Final = re.compile(r"[a-z][a-z0-9-]*")
_NAME_RE: Final = re.compile(r"[a-z][a-z0-9_]*")


@dataclass(frozen=True)
class Source:
    """A document rules come from (a circular, a guide, or a note that a value is a stand-in)."""

    key: str
    title: str
    issuer: str = ""
    issued: dt.date | None = None
    reference: str = ""
    url: str = ""


@dataclass(frozen=True)
class Expression:
    """Expression text, its AST and compiled closure; ``line`` is where it sits in its file."""

    text: str
    node: ex.Node
    fn: Fn
    kind: str
    line: int
    names: frozenset[str]
    params: frozenset[str]
    enum: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Condition:
    name: str
    label: str
    expr: Expression


@dataclass(frozen=True)
class Variable:
    name: str
    label: str
    expr: Expression
    enum: tuple[str, ...] | None


@dataclass(frozen=True)
class TimeLimit:
    """办理时限: the last day to apply (None: no deadline or automatic) and processing time."""

    apply_by: dt.date | None
    processing: str


@dataclass(frozen=True)
class Measure:
    """One relief measure. ``sources`` names the bits of its unknown masks."""

    id: str
    title: str
    title_en: str
    target: str
    mode: str
    content: str
    conditions_text: str
    documents: tuple[str, ...]
    office: str
    time_limit: TimeLimit
    source: str
    clause: str
    stand_in: bool
    stand_in_note: str
    variables: tuple[Variable, ...]
    conditions: tuple[Condition, ...]
    amount: Expression
    sources: Sources
    facts_read: frozenset[str]
    params_read: frozenset[str]
    path: str


@dataclass(frozen=True)
class Pack:
    """A loaded, checked pack. ``measures`` keep the order of pack.yaml."""

    id: str
    title: str
    version: str
    jurisdiction: str
    default_at: dt.date
    path: Path
    facts: Mapping[str, FactSpec]
    id_fact: str
    parameters: Mapping[str, Parameter]
    measures: tuple[Measure, ...]
    sources: Mapping[str, Source]
    scenario_files: tuple[Path, ...] = field(default=())

    def measure(self, measure_id: str) -> Measure:
        for m in self.measures:
            if m.id == measure_id:
                return m
        raise KeyError(measure_id)

    def needed_columns(self) -> dict[str, list[str]]:
        """Each input column some measure reads, with the ids of the measures reading it."""
        out: dict[str, list[str]] = {}
        for m in self.measures:
            for fact in sorted(m.facts_read):
                out.setdefault(fact, []).append(m.id)
        return out


# --- field readers --------------------------------------------------------------------------------


def _map(value: Any, path: str, line: int, what: str) -> YMap:
    if not isinstance(value, YMap):
        raise PackError(path, line, f"{what} must be a mapping")
    return value


def _text(m: YMap, key: str, *, required: bool = True, default: str = "") -> str:
    if key not in m or m[key] is None:
        if required:
            raise PackError(m.path, m.line, f"missing required field {key!r}")
        return default
    value = m[key]
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise PackError(m.path, m.line_of(key), f"{key!r} must be text")
    text = str(value).strip()
    if required and not text:
        raise PackError(m.path, m.line_of(key), f"{key!r} must not be empty")
    return text


def _date(m: YMap, key: str, *, required: bool = True) -> dt.date | None:
    value = m.get(key)
    if value is None:
        if required:
            raise PackError(m.path, m.line, f"missing required date {key!r}")
        return None
    if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
        raise PackError(m.path, m.line_of(key), f"{key!r} must be a date YYYY-MM-DD, got {value!r}")
    return value


def _bool(m: YMap, key: str) -> bool:
    value = m.get(key, False)
    if not isinstance(value, bool):
        raise PackError(m.path, m.line_of(key), f"{key!r} must be true or false")
    return value


def _number(value: Any, path: str, line: int, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PackError(path, line, f"{what} must be a number, got {value!r}")
    return float(value)


def _check_keys(m: YMap, allowed: set[str], what: str) -> None:
    for key in m:
        if key not in allowed:
            known = ", ".join(sorted(allowed))
            raise PackError(m.path, m.line_of(key), f"unknown field {key!r} in {what} ({known})")


def _source_ref(m: YMap, key: str, sources: Mapping[str, Source]) -> str:
    ref = _text(m, key)
    if ref not in sources:
        raise PackError(
            m.path, m.line_of(key), f"source {ref!r} is not declared in pack.yaml 'sources'"
        )
    return ref


# --- pack.yaml, facts, sources --------------------------------------------------------------------


def _load_sources(meta: YMap) -> dict[str, Source]:
    raw = _map(meta.get("sources"), meta.path, meta.line_of("sources"), "'sources'")
    out: dict[str, Source] = {}
    for key, value in raw.items():
        s = _map(value, raw.path, raw.line_of(key), f"source {key!r}")
        _check_keys(s, {"title", "issuer", "issued", "reference", "url"}, f"source {key!r}")
        out[key] = Source(
            key=key,
            title=_text(s, "title"),
            issuer=_text(s, "issuer", required=False),
            issued=_date(s, "issued", required=False),
            reference=_text(s, "reference", required=False),
            url=_text(s, "url", required=False),
        )
    return out


def _load_facts(path: Path) -> tuple[dict[str, FactSpec], str]:
    raw = _map(load_yaml(path), str(path), 1, "facts.yaml")
    facts: dict[str, FactSpec] = {}
    id_fact = ""
    for name, value in raw.items():
        line = raw.line_of(name)
        if not _NAME_RE.fullmatch(name) or name == "param" or name in ex.KEYWORDS | ex.FUNCTIONS:
            raise PackError(raw.path, line, f"{name!r} cannot name a fact")
        f = _map(value, raw.path, line, f"fact {name!r}")
        _check_keys(f, {"type", "label", "description", "values", "integer", "min"}, "a fact")
        kind = _text(f, "type")
        if kind not in FACT_TYPES:
            raise PackError(f.path, f.line_of("type"), f"unknown fact type {kind!r}")
        values: tuple[str, ...] = ()
        if kind == "enum":
            vals = f.get("values")
            if not isinstance(vals, YList) or not vals or not all(isinstance(v, str) for v in vals):
                raise PackError(f.path, f.line_of("values"), "an enum needs a list of text values")
            values = tuple(vals)
        if kind == "id":
            if id_fact:
                raise PackError(f.path, line, f"only one id fact allowed (already {id_fact!r})")
            id_fact = name
        minimum = f.get("min")
        facts[name] = FactSpec(
            name=name,
            kind=kind,
            label=_text(f, "label", required=False),
            description=_text(f, "description", required=False),
            values=values,
            integer=_bool(f, "integer"),
            minimum=None if minimum is None else _number(minimum, f.path, f.line_of("min"), "min"),
        )
    if not id_fact:
        raise PackError(str(path), 1, "one fact must have type 'id' (the USCC)")
    return facts, id_fact


def _load_parameters(
    directory: Path, facts: Mapping[str, FactSpec], sources: Mapping[str, Source]
) -> dict[str, Parameter]:
    params: dict[str, Parameter] = {}
    for path in sorted(directory.glob("*.yaml")):
        raw = _map(load_yaml(path), str(path), 1, "a parameters file")
        for name, value in raw.items():
            line = raw.line_of(name)
            if not _NAME_RE.fullmatch(name):
                raise PackError(raw.path, line, f"{name!r} cannot name a parameter")
            if name in params:
                raise PackError(raw.path, line, f"parameter {name!r} defined twice")
            params[name] = _load_parameter(name, _map(value, raw.path, line, name), facts, sources)
    return params


def _load_parameter(
    name: str, p: YMap, facts: Mapping[str, FactSpec], sources: Mapping[str, Source]
) -> Parameter:
    _check_keys(p, {"description", "unit", "split_by", "values"}, "a parameter")
    split_by = _text(p, "split_by", required=False) or None
    categories: tuple[str, ...] = ()
    if split_by is not None:
        spec = facts.get(split_by)
        if spec is None or spec.kind != "enum":
            raise PackError(p.path, p.line_of("split_by"), f"split_by {split_by!r} is no enum fact")
        categories = spec.values
    values = p.get("values")
    if not isinstance(values, YList) or not values:
        raise PackError(p.path, p.line_of("values"), f"parameter {name!r} needs a list of values")
    periods: list[Period] = []
    for item, item_line in zip(values, values.item_lines, strict=True):
        v = _map(item, p.path, item_line, "a parameter value")
        _check_keys(v, {"from", "value", "source", "stand_in", "note"}, "a parameter value")
        start = _date(v, "from")
        assert start is not None
        raw_value = v.get("value")
        scalar: float | None = None
        by: dict[str, float] | None = None
        if isinstance(raw_value, YMap):
            if split_by is None:
                raise PackError(v.path, v.line_of("value"), "a value by category needs split_by")
            by = {}
            for cat, num in raw_value.items():
                if cat not in categories and cat != "default":
                    raise PackError(
                        v.path, raw_value.line_of(cat), f"{cat!r} is not a value of {split_by}"
                    )
                by[cat] = _number(num, v.path, raw_value.line_of(cat), f"value for {cat!r}")
            missing = [c for c in categories if c not in by]
            if missing and "default" not in by:
                raise PackError(
                    v.path, v.line_of("value"), f"no value for {', '.join(missing)} and no default"
                )
        else:
            scalar = _number(raw_value, v.path, v.line_of("value"), "value")
        if periods and start <= periods[-1].start:
            raise PackError(v.path, item_line, "values must be listed in increasing 'from' order")
        periods.append(
            Period(
                start=start,
                value=scalar,
                by=by,
                source=_source_ref(v, "source", sources),
                stand_in=_bool(v, "stand_in"),
                note=_text(v, "note", required=False),
                line=item_line,
            )
        )
    return Parameter(
        name=name,
        description=_text(p, "description"),
        unit=_text(p, "unit", required=False),
        periods=tuple(periods),
        split_by=split_by,
        path=p.path,
    )


# --- measures -------------------------------------------------------------------------------------

_MEASURE_KEYS: Final = {
    "id",
    "title",
    "title_en",
    "target",
    "mode",
    "content",
    "conditions_text",
    "documents",
    "office",
    "time_limit",
    "source",
    "clause",
    "stand_in",
    "stand_in_note",
    "variables",
    "conditions",
    "amount",
}


def _expression(m: YMap, key: str, env: Env, want: str | None, what: str) -> Expression:
    text = _text(m, key)
    line = m.line_of(key)
    try:
        node = ex.parse(text)
        fn, kind, enum = compile_expr(node, env)
    except ExpressionError as exc:
        # A one-line expression sits on its key's line; a block scalar starts on the next one.
        file_line = line + exc.line if "\n" in text else line
        raise PackError(
            m.path,
            file_line,
            f"{what}: {exc.reason} (expression line {exc.line}, column {exc.column})",
        ) from None
    if want is not None and kind != want:
        raise PackError(m.path, line, f"{what} must be {want}, but this expression gives {kind}")
    names, params = ex.names_in(node)
    return Expression(text, node, fn, kind, line, frozenset(names), frozenset(params), enum)


def _load_measure(
    path: Path,
    facts: Mapping[str, FactSpec],
    params: Mapping[str, Parameter],
    sources: Mapping[str, Source],
) -> Measure:
    m = _map(load_yaml(path), str(path), 1, "a measure file")
    _check_keys(m, _MEASURE_KEYS, "a measure")
    mid = _text(m, "id")
    if not _ID_RE.fullmatch(mid):
        raise PackError(m.path, m.line_of("id"), f"measure id {mid!r} must match [a-z][a-z0-9-]*")
    if mid != path.stem:
        raise PackError(m.path, m.line_of("id"), f"id {mid!r} must match the file name {path.stem}")
    mode = _text(m, "mode")
    if mode not in MODES:
        raise PackError(m.path, m.line_of("mode"), f"mode must be one of {', '.join(MODES)}")
    docs = m.get("documents", YList())
    if not isinstance(docs, list) or not all(isinstance(d, str) for d in docs):
        raise PackError(m.path, m.line_of("documents"), "'documents' must be a list of text")
    tl = _map(m.get("time_limit"), m.path, m.line_of("time_limit"), "'time_limit'")
    _check_keys(tl, {"apply_by", "processing"}, "'time_limit'")
    time_limit = TimeLimit(_date(tl, "apply_by", required=False), _text(tl, "processing"))

    env = Env(facts=facts, params=params, sources=Sources(mid))
    variables: list[Variable] = []
    raw_vars = m.get("variables") or YList()
    if not isinstance(raw_vars, YList):
        raise PackError(m.path, m.line_of("variables"), "'variables' must be a list")
    for item, line in zip(raw_vars, raw_vars.item_lines, strict=True):
        v = _map(item, m.path, line, "a variable")
        _check_keys(v, {"name", "label", "expr"}, "a variable")
        name = _text(v, "name")
        reserved = name in ex.KEYWORDS or name in ex.FUNCTIONS or name == "param"
        if not _NAME_RE.fullmatch(name) or reserved or name in facts or name in env.variables:
            raise PackError(v.path, v.line_of("name"), f"{name!r} cannot name a variable here")
        e = _expression(v, "expr", env, None, f"variable {name!r}")
        env.variables[name] = (e.fn, e.kind, e.enum)
        variables.append(Variable(name, _text(v, "label", required=False), e, e.enum))

    raw_conds = m.get("conditions")
    if not isinstance(raw_conds, YList) or not raw_conds:
        raise PackError(m.path, m.line_of("conditions"), "'conditions' must be a non-empty list")
    conditions: list[Condition] = []
    for item, line in zip(raw_conds, raw_conds.item_lines, strict=True):
        c = _map(item, m.path, line, "a condition")
        _check_keys(c, {"name", "label", "expr"}, "a condition")
        name = _text(c, "name")
        if any(existing.name == name for existing in conditions):
            raise PackError(c.path, c.line_of("name"), f"condition {name!r} defined twice")
        e = _expression(c, "expr", env, BOOL, f"condition {name!r}")
        conditions.append(Condition(name, _text(c, "label"), e))

    amount = _expression(m, "amount", env, NUM, "amount")
    stand_in = _bool(m, "stand_in")
    note = _text(m, "stand_in_note", required=stand_in)
    used_params = set(amount.params).union(*(c.expr.params for c in conditions))
    used_params |= set().union(*(v.expr.params for v in variables))
    return Measure(
        id=mid,
        title=_text(m, "title"),
        title_en=_text(m, "title_en", required=False),
        target=_text(m, "target"),
        mode=mode,
        content=_text(m, "content"),
        conditions_text=_text(m, "conditions_text"),
        documents=tuple(docs),
        office=_text(m, "office"),
        time_limit=time_limit,
        source=_source_ref(m, "source", sources),
        clause=_text(m, "clause", required=False),
        stand_in=stand_in,
        stand_in_note=note,
        variables=tuple(variables),
        conditions=tuple(conditions),
        amount=amount,
        sources=env.sources,
        facts_read=frozenset(env.facts_read),
        params_read=frozenset(used_params),
        path=str(path),
    )


def resolve_pack_path(path_or_name: str | Path) -> Path:
    """A directory path as given, else the built-in pack of that name; PackError otherwise."""
    candidate = Path(path_or_name)
    if candidate.is_dir():
        return candidate
    text = str(path_or_name)
    if _ID_RE.fullmatch(text) and (PACKS_DIR / text).is_dir():
        return PACKS_DIR / text
    available = sorted(p.name for p in PACKS_DIR.iterdir() if (p / "pack.yaml").is_file())
    raise PackError(text, 0, f"no such pack directory or built-in pack ({', '.join(available)})")


def load_pack(path_or_name: str | Path) -> Pack:
    """Load and check a pack by directory or built-in name; raise PackError if it is broken."""
    root = resolve_pack_path(path_or_name)
    meta_path = root / "pack.yaml"
    if not meta_path.is_file():
        raise PackError(str(meta_path), 0, "missing pack.yaml")
    meta = _map(load_yaml(meta_path), str(meta_path), 1, "pack.yaml")
    _check_keys(
        meta,
        {"id", "title", "version", "jurisdiction", "default_at", "sources", "measures"},
        "pack.yaml",
    )
    sources = _load_sources(meta)
    facts_path = root / "facts.yaml"
    if not facts_path.is_file():
        raise PackError(str(facts_path), 0, "missing facts.yaml")
    facts, id_fact = _load_facts(facts_path)
    params = _load_parameters(root / "parameters", facts, sources)

    order = meta.get("measures")
    if not isinstance(order, YList) or not order:
        raise PackError(meta.path, meta.line_of("measures"), "'measures' must list measure ids")
    files = {p.stem: p for p in (root / "measures").glob("*.yaml")}
    for mid, line in zip(order, order.item_lines, strict=True):
        if mid not in files:
            raise PackError(meta.path, line, f"measure {mid!r} has no file measures/{mid}.yaml")
    unlisted = sorted(set(files) - set(order))
    if unlisted:
        raise PackError(meta.path, meta.line_of("measures"), f"not listed: {', '.join(unlisted)}")
    if len(set(order)) != len(order):
        raise PackError(meta.path, meta.line_of("measures"), "a measure is listed twice")
    measures = tuple(_load_measure(files[mid], facts, params, sources) for mid in order)

    default_at = _date(meta, "default_at")
    assert default_at is not None
    for m in measures:
        for name in sorted(m.params_read):
            first = params[name].periods[0].start
            if first > default_at:
                raise PackError(
                    meta.path,
                    meta.line_of("default_at"),
                    f"parameter {name!r} (used by {m.id}) has no value on default_at "
                    f"{default_at.isoformat()}; its first value applies from {first.isoformat()}",
                )
    return Pack(
        id=_text(meta, "id"),
        title=_text(meta, "title"),
        version=_text(meta, "version"),
        jurisdiction=_text(meta, "jurisdiction"),
        default_at=default_at,
        path=root,
        facts=facts,
        id_fact=id_fact,
        parameters=params,
        measures=measures,
        sources=sources,
        scenario_files=tuple(sorted((root / "tests").glob("*.yaml"))),
    )
