"""Policy reads: the pack with the officials' parameter values merged in, each enterprise's
latest facts, eligibility (one enterprise, with explanations) and "policy finds the enterprise"
(the whole scoped set in one vectorised evaluation), claims.

The engine is pure; this module turns database rows into its table (registry facts plus the
entered facts of the period) and its results back into what the pages show."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fugong.core.models import Enterprise, Organisation, User
from fugong.core.permissions import enterprise_scope, require_role
from fugong.errors import NotFound
from fugong.policies.engine import (
    Measure,
    Pack,
    Period,
    Results,
    evaluate,
    load_pack,
    table_from_records,
)
from fugong.policies.engine.pack import Source
from fugong.policies.models import Claim, EnterpriseFacts, ParameterValue
from fugong.policies.permissions import FINDERS, POLICY_READERS, claim_scope

DEFAULT_PACK = "huangpu-2020"
DEFAULT_PERIOD = "2020"
#: Facts the registry already keeps; the facts form does not ask for them again.
REGISTRY_FACTS = ("uscc", "name", "district", "size", "key_category", "insured_employees")
STATUS_LABELS = {"eligible": "符合条件", "ineligible": "不符合", "unknown": "信息不足"}


@lru_cache(maxsize=8)
def base_pack(name: str = DEFAULT_PACK) -> Pack:
    """The pack as shipped (loading checks every expression, so it is done once)."""
    return load_pack(name)


def period_date(period: str) -> dt.date:
    """The evaluation date of a period: mid-year, i.e. the pack's default date for 2020."""
    return dt.date(int(period), 6, 30)


def parameter_values(session: Session, pack: str = DEFAULT_PACK) -> list[ParameterValue]:
    return list(
        session.scalars(
            select(ParameterValue)
            .where(ParameterValue.pack == pack)
            .order_by(ParameterValue.parameter, ParameterValue.valid_from, ParameterValue.id)
        )
    )


def merge_parameter_values(pack: Pack, rows: Sequence[ParameterValue]) -> Pack:
    """The pack with the officials' dated values added to its parameters.

    Rows of one parameter and date form one period; a period on the same date as a pack period
    replaces it. For a size-split parameter, sizes not given keep the value in force on that
    date (the pack period it replaces, else the one before), so adding only ``large`` changes
    only large firms. Each row becomes a source ``db-<id>`` carrying its source text, so
    explanations and stand-in flags still work.
    """
    if not rows:
        return pack
    sources = dict(pack.sources)
    params = dict(pack.parameters)
    by_param: dict[str, dict[dt.date, list[ParameterValue]]] = {}
    for row in rows:
        if row.parameter in params:
            by_param.setdefault(row.parameter, {}).setdefault(row.valid_from, []).append(row)
    for name, dated in by_param.items():
        param = params[name]
        periods = {p.start: p for p in param.periods}
        for start, group in sorted(dated.items()):
            key = f"db-{group[-1].id}"
            sources[key] = Source(key=key, title=group[-1].source_text, reference="官员录入")
            scalar = [r for r in group if r.size_class is None]
            sized = {r.size_class: r.value for r in group if r.size_class is not None}
            stand_in = any(r.stand_in for r in group)
            if param.split_by is None or not sized:
                value = (scalar or group)[-1].value
                period = Period(start, value, None, key, stand_in, "官员录入")
            else:
                # Start from what is in force on that date (the pack's own split, with its
                # ``default`` for the sizes it does not name), then apply what was entered.
                before = _in_force(periods, start)
                base: dict[str, float] = {}
                if scalar:
                    base["default"] = scalar[-1].value
                elif before is not None:
                    base = dict(before.by) if before.by else {"default": before.for_category("")}
                base.update({k: v for k, v in sized.items() if k is not None})
                period = Period(start, None, base, key, stand_in, "官员录入")
            periods[start] = period
        ordered = tuple(periods[d] for d in sorted(periods))
        params[name] = dataclasses.replace(param, periods=ordered)
    suffix = f"+db{max(r.id for r in rows)}"
    return dataclasses.replace(
        pack, parameters=params, sources=sources, version=pack.version + suffix
    )


def _in_force(periods: Mapping[dt.date, Period], when: dt.date) -> Period | None:
    found = None
    for start in sorted(periods):
        if start <= when:
            found = periods[start]
    return found


def current_pack(session: Session, name: str = DEFAULT_PACK) -> Pack:
    """The pack evaluations use now: as shipped plus every value officials have added."""
    return merge_parameter_values(base_pack(name), parameter_values(session, name))


def pack_label(pack: Pack) -> str:
    return f"{pack.id}@{pack.version}"


# -- facts ---------------------------------------------------------------------------------


def latest_facts(
    session: Session, enterprise_ids: Sequence[int] | None, period: str
) -> dict[int, EnterpriseFacts]:
    """The newest facts version per enterprise for ``period`` (None: every enterprise)."""
    newest = select(
        EnterpriseFacts.enterprise_id, func.max(EnterpriseFacts.version).label("v")
    ).where(EnterpriseFacts.period == period)
    if enterprise_ids is not None:
        newest = newest.where(EnterpriseFacts.enterprise_id.in_(enterprise_ids))
    sub = newest.group_by(EnterpriseFacts.enterprise_id).subquery()
    rows = session.scalars(
        select(EnterpriseFacts).join(
            sub,
            (EnterpriseFacts.enterprise_id == sub.c.enterprise_id)
            & (EnterpriseFacts.version == sub.c.v)
            & (EnterpriseFacts.period == period),
        )
    )
    return {r.enterprise_id: r for r in rows}


def facts_history(
    session: Session, *, actor: User, enterprise_id: int, period: str
) -> list[EnterpriseFacts]:
    visible_enterprise(session, actor=actor, enterprise_id=enterprise_id)
    return list(
        session.scalars(
            select(EnterpriseFacts)
            .where(EnterpriseFacts.enterprise_id == enterprise_id, EnterpriseFacts.period == period)
            .order_by(EnterpriseFacts.version.desc())
        )
    )


def visible_enterprise(session: Session, *, actor: User, enterprise_id: int) -> Enterprise:
    require_role(actor, *POLICY_READERS)
    ent = session.scalar(
        select(Enterprise).where(Enterprise.id == enterprise_id, enterprise_scope(actor))
    )
    if ent is None:
        raise NotFound("企业不存在")
    return ent


def record_for(
    pack: Pack, org: Organisation, ent: Enterprise, facts: EnterpriseFacts | None
) -> dict[str, Any]:
    """One engine record: the entered facts, then the registry's own facts on top."""
    rec: dict[str, Any] = {}
    if facts is not None:
        rec = {
            k: v
            for k, v in facts.facts.items()
            if k in pack.facts and k not in REGISTRY_FACTS and v is not None
        }
    registry: dict[str, Any] = {
        "uscc": org.uscc,
        "name": org.name,
        "district": ent.district,
        "size": ent.size,
        "key_category": ent.key_category is not None,
        "insured_employees": ent.insured_employees,
    }
    rec.update({k: v for k, v in registry.items() if k in pack.facts and v is not None})
    return rec


# -- eligibility ---------------------------------------------------------------------------


def amount_stand_in(measure: Measure, stand_in_params: Iterable[str]) -> bool:
    """Whether an amount is provisional: the measure is a stand-in, or its formula reads a
    parameter value not yet confirmed. (A stand-in threshold in a condition is shown in the
    explanation; it does not make the amount provisional.)"""
    return measure.stand_in or bool(measure.amount.params & set(stand_in_params))


@dataclass
class MeasureView:
    """One measure for one enterprise, as the eligibility page shows it."""

    measure: Any
    status: str
    cents: int
    missing: list[str]
    explanation: dict[str, Any]
    claim: Claim | None = None

    @property
    def automatic(self) -> bool:
        return bool(self.measure.mode == "automatic")

    @property
    def stand_in(self) -> bool:
        return amount_stand_in(self.measure, self.explanation.get("stand_in_parameters", ()))


@dataclass
class Eligibility:
    organisation: Organisation
    enterprise: Enterprise
    period: str
    at: dt.date
    pack: Pack
    facts: EnterpriseFacts | None
    measures: list[MeasureView] = field(default_factory=list)

    @property
    def eligible_total(self) -> int:
        return sum(m.cents for m in self.measures if m.status == "eligible")


def evaluate_one(
    session: Session, pack: Pack, ent: Enterprise, period: str, *, explain: bool = True
) -> tuple[Results, EnterpriseFacts | None]:
    org = ent.organisation
    facts = latest_facts(session, [ent.id], period).get(ent.id)
    table = table_from_records([record_for(pack, org, ent, facts)], pack.facts, pack.id_fact)
    return evaluate(pack, table, period_date(period), explain=[0] if explain else False), facts


def eligibility(
    session: Session, *, actor: User, enterprise_id: int, period: str = DEFAULT_PERIOD
) -> Eligibility:
    """Every measure of the pack for one enterprise: status, amount, what is missing, why."""
    ent = visible_enterprise(session, actor=actor, enterprise_id=enterprise_id)
    pack = current_pack(session)
    results, facts = evaluate_one(session, pack, ent, period)
    assert results.explanations is not None
    claims = {
        c.measure: c
        for c in session.scalars(
            select(Claim).where(Claim.enterprise_id == ent.id, Claim.period == period)
        )
    }
    out = Eligibility(ent.organisation, ent, period, results.at, pack, facts)
    for r, expl in zip(results.measures, results.explanations, strict=True):
        out.measures.append(
            MeasureView(
                measure=r.measure,
                status=expl["status"],
                cents=int(r.cents[0]),
                missing=r.missing(0),
                explanation=expl,
                claim=claims.get(r.measure.id),
            )
        )
    return out


# -- policy finds the enterprise -----------------------------------------------------------


@dataclass(frozen=True)
class FinderRow:
    enterprise_id: int
    uscc: str
    name: str
    street: str | None
    manager: str | None
    measure: str
    title: str
    cents: int
    stand_in: bool


@dataclass
class FinderFilter:
    measure: str | None = None
    street: str | None = None
    min_cents: int | None = None


def find_enterprises(
    session: Session, *, actor: User, period: str = DEFAULT_PERIOD, flt: FinderFilter | None = None
) -> list[FinderRow]:
    """Enterprises in the actor's scope that are eligible for an on-application measure and
    have not claimed it for ``period``, with the estimated amount, largest first.

    The whole scoped set is one engine table and one ``evaluate`` call."""
    require_role(actor, *FINDERS)
    flt = flt or FinderFilter()
    pack = current_pack(session)
    stmt = (
        select(Enterprise, Organisation)
        .join(Organisation, Organisation.id == Enterprise.id)
        .where(enterprise_scope(actor))
        .order_by(Enterprise.id)
    )
    if flt.street:
        stmt = stmt.where(Enterprise.street == flt.street)
    pairs = session.execute(stmt).all()
    if not pairs:
        return []
    facts = latest_facts(session, None, period)
    records = [record_for(pack, org, ent, facts.get(ent.id)) for ent, org in pairs]
    results = evaluate(
        pack, table_from_records(records, pack.facts, pack.id_fact), period_date(period)
    )
    claimed: set[tuple[int, str]] = {
        (row[0], row[1])
        for row in session.execute(
            select(Claim.enterprise_id, Claim.measure).where(
                Claim.period == period, claim_scope(actor)
            )
        )
    }
    managers: dict[int, str] = {
        row[0]: row[1] for row in session.execute(select(User.id, User.display_name))
    }
    read = set().union(*(m.params_read for m in pack.measures))
    stand_in_params = {name for name in read if pack.parameters[name].at(results.at).stand_in}
    out: list[FinderRow] = []
    for r in results.measures:
        m = r.measure
        if m.mode != "application" or (flt.measure and m.id != flt.measure):
            continue
        stand_in = amount_stand_in(m, stand_in_params)
        eligible = (r.status == 1).nonzero()[0].tolist()
        cents = r.cents.tolist()
        for i in eligible:
            ent, org = pairs[i]
            if (ent.id, m.id) in claimed:
                continue
            if flt.min_cents is not None and cents[i] < flt.min_cents:
                continue
            out.append(
                FinderRow(
                    enterprise_id=ent.id,
                    uscc=org.uscc or "",
                    name=org.name,
                    street=ent.street,
                    manager=managers.get(ent.manager_id) if ent.manager_id else None,
                    measure=m.id,
                    title=m.title,
                    cents=cents[i],
                    stand_in=stand_in,
                )
            )
    out.sort(key=lambda row: (-row.cents, row.enterprise_id, row.measure))
    return out


# -- claims --------------------------------------------------------------------------------


def list_claims(
    session: Session, *, actor: User, status: str | None = None, limit: int = 500
) -> list[Claim]:
    require_role(actor, *POLICY_READERS)
    stmt = select(Claim).where(claim_scope(actor))
    if status:
        stmt = stmt.where(Claim.status == status)
    return list(session.scalars(stmt.order_by(Claim.id.desc()).limit(limit)))


def get_claim(session: Session, *, actor: User, claim_id: int) -> Claim:
    require_role(actor, *POLICY_READERS)
    claim = session.scalar(select(Claim).where(Claim.id == claim_id, claim_scope(actor)))
    if claim is None:
        raise NotFound("申请不存在")
    return claim
