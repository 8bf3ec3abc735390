"""Public-opinion pages for CDC analysts: dashboard, post search (full text), topics per day or
week, alerts (posts behind each, acknowledge, annotate; the rumour watch-list), labelling,
models (train from labels, evaluate, activate), sources (upload, feeds, analyse) and weekly
reports (view, build, download the PDF). Role ``cdc`` only; a refused visit is audited."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup
from sqlalchemy.orm import Session

from fugong.errors import Conflict, FugongError, NotFound, ValidationFailed
from fugong.opinion import queries, services
from fugong.opinion.ingest import CST
from fugong.opinion.models import ALERT_KINDS, ALERT_STATUSES, SENTIMENTS, SOURCE_KINDS
from fugong.opinion.permissions import require_cdc
from fugong.web.deps import CurrentUser, SessionDep, form_csrf_guard
from fugong.web.ui.render import errors_by_field, flash, redirect, render

router = APIRouter(prefix="/opinion", dependencies=[Depends(form_csrf_guard)])

FLASH = {
    "acked": "预警已标记为已处理。",
    "annotated": "备注已保存。",
    "detected": "预警规则已运行。",
    "watch_added": "已加入谣言监测列表。",
    "watch_removed": "已移出谣言监测列表。",
    "labelled": "已保存标注。",
    "trained": "模型已训练。",
    "activated": "模型已启用，新帖文将由它打分。",
    "lexicon": "已改回词典基线。",
    "report": "报告已生成。",
    "uploaded": "文件已导入。",
    "fetched": "订阅源已抓取。",
    "feed_added": "订阅源已添加。",
    "analysed": "分析已完成。",
}


def _cst(when: datetime) -> str:
    """Times on the pages are Beijing time, like the days that counts and alerts use."""
    return when.astimezone(CST).strftime("%Y-%m-%d %H:%M")


CTX: dict[str, Any] = {
    "cst": _cst,
    "SENTIMENTS": SENTIMENTS,
    "ALERT_KINDS": ALERT_KINDS,
    "ALERT_STATUSES": ALERT_STATUSES,
    "SOURCE_KINDS": SOURCE_KINDS,
}


def _cdc(request: Request, session: Session, user: Any) -> None:
    """Refuse non-CDC users, and make the refusal's audit row survive the error."""
    try:
        require_cdc(session, user, f"{request.method} {request.url.path}")
    except FugongError:
        session.commit()
        raise


def _page(request: Request, template: str, user: Any, **ctx: Any) -> Response:
    return render(request, template, user, flash=flash(request, FLASH), **CTX, **ctx)


def _settings(request: Request) -> Any:
    return request.app.state.settings


def _key(request: Request) -> bytes:
    return services.load_author_key(Path(_settings(request).opinion_author_key_file))


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


# -- dashboard -------------------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
def dashboard(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    _cdc(request, session, user)
    from fugong.opinion.charts import sentiment_bars, volume_line

    d = queries.dashboard(session, actor=user)
    marks = {a.day.isoformat() for a in d.alerts}
    return _page(
        request,
        "opinion/dashboard.html",
        user,
        tab="dash",
        d=d,
        volume=volume_line([(day, sum(c.values())) for day, c in d.daily], marks=marks),
        sentiment=sentiment_bars(d.daily[-7:]),
    )


# -- posts -----------------------------------------------------------------------------------


def _highlight(text: str, terms: list[str]) -> Markup:
    out = Markup.escape(text)
    for t in sorted(terms, key=len, reverse=True):
        esc = str(Markup.escape(t))
        if esc:
            out = Markup(  # noqa: S704 - both sides are escaped
                re.sub(re.escape(esc), f"<mark>{esc}</mark>", str(out), flags=re.IGNORECASE)
            )
    return out


@router.get("/posts", response_class=HTMLResponse)
def posts(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    q: str = "",
    source: str = "",
    sentiment: str = "",
    start: str = "",
    end: str = "",
    dup: str = "",
    page: int = 1,
) -> Response:
    _cdc(request, session, user)
    f = queries.PostFilter(
        q=q[:200],
        source_id=int(source) if source.isdigit() else None,
        sentiment=sentiment if sentiment in SENTIMENTS else None,
        start=_date(start),
        end=_date(end),
        duplicates=dup == "1",
        page=page,
    )
    result = queries.search_posts(session, actor=user, f=f)
    params = {
        "q": q,
        "source": source,
        "sentiment": sentiment,
        "start": start,
        "end": end,
        "dup": dup,
    }
    return _page(
        request,
        "opinion/posts.html",
        user,
        tab="posts",
        result=result,
        values=params,
        qs="&".join(f"{k}={v}" for k, v in params.items() if v),
        sizes=queries.group_sizes(session, result.posts),
        sources=queries.list_sources(session, actor=user),
        hl=lambda t: _highlight(t, result.terms or ([q] if q else [])),
    )


@router.get("/posts/{post_id}", response_class=HTMLResponse)
def post_detail(request: Request, post_id: int, session: SessionDep, user: CurrentUser) -> Response:
    """One post in full: where it came from, how it was scored and by which model, its label,
    the reposts grouped with it and the alerts it stands behind."""
    _cdc(request, session, user)
    post = queries.get_post(session, actor=user, post_id=post_id)
    members = queries.group_members(session, post)
    return _page(
        request,
        "opinion/post_detail.html",
        user,
        tab="posts",
        post=post,
        members=[m for m in members if m.id != post.id],
        group_size=len(members),
        alerts=queries.alerts_for_post(session, post),
        label=queries.label_of(session, post),
    )


# -- topics ----------------------------------------------------------------------------------


@router.get("/topics", response_class=HTMLResponse)
def topics(
    request: Request, session: SessionDep, user: CurrentUser, period: str = "day", key: str = ""
) -> Response:
    _cdc(request, session, user)
    period = "week" if period == "week" else "day"
    t = queries.topics(session, actor=user, period=period, key=key or None)
    return _page(
        request,
        "opinion/topics.html",
        user,
        tab="topics",
        period=period,
        keys=t.keys,
        chosen=t.chosen,
        rows=t.topics,
        keywords=t.keywords,
    )


# -- alerts ----------------------------------------------------------------------------------


@router.get("/alerts", response_class=HTMLResponse)
def alerts(
    request: Request, session: SessionDep, user: CurrentUser, status: str = "", kind: str = ""
) -> Response:
    _cdc(request, session, user)
    rows = queries.list_alerts(
        session,
        actor=user,
        status=status if status in ALERT_STATUSES else None,
        kind=kind if kind in ALERT_KINDS else None,
    )
    return _page(
        request,
        "opinion/alerts.html",
        user,
        tab="alerts",
        rows=rows,
        status=status,
        kind=kind,
        phrases=queries.watch_phrases(session, actor=user),
        errors={},
        values={},
    )


@router.post("/alerts/detect")
async def detect(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    _cdc(request, session, user)
    end = queries.latest_day(session) or queries.today()
    s = _settings(request)
    config = services.AlertConfig(
        ears=services.parse_ears(s.opinion_ears), negative_z=s.opinion_negative_z
    )
    services.detect_alerts(
        session, actor=user, start=end - timedelta(days=6), end=end, config=config
    )
    return redirect("/opinion/alerts", msg="detected")


@router.post("/watch", response_class=HTMLResponse)
async def watch_add(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    phrase: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
) -> Response:
    _cdc(request, session, user)
    try:
        services.add_watch_phrase(session, actor=user, phrase=phrase, note=note)
    except (ValidationFailed, Conflict) as e:
        errors = (
            errors_by_field(e.errors) if isinstance(e, ValidationFailed) else {"phrase": e.message}
        )
        return _page(
            request,
            "opinion/alerts.html",
            user,
            status_code=422,
            tab="alerts",
            rows=queries.list_alerts(session, actor=user),
            status="",
            kind="",
            phrases=queries.watch_phrases(session, actor=user),
            errors=errors,
            values={"phrase": phrase, "note": note},
        )
    return redirect("/opinion/alerts", msg="watch_added")


@router.post("/watch/{phrase_id}/delete")
async def watch_remove(
    request: Request, phrase_id: int, session: SessionDep, user: CurrentUser
) -> Response:
    _cdc(request, session, user)
    services.remove_watch_phrase(session, actor=user, phrase_id=phrase_id)
    return redirect("/opinion/alerts", msg="watch_removed")


def _alert_page(
    request: Request, session: Session, user: Any, alert_id: int, **extra: Any
) -> Response:
    alert, alert_posts = queries.get_alert(session, actor=user, alert_id=alert_id)
    return _page(
        request,
        "opinion/alert_detail.html",
        user,
        tab="alerts",
        alert=alert,
        posts=alert_posts,
        sizes=queries.group_sizes(session, alert_posts),
        errors=extra.pop("errors", {}),
        **extra,
    )


@router.get("/alerts/{alert_id}", response_class=HTMLResponse)
def alert_detail(
    request: Request, alert_id: int, session: SessionDep, user: CurrentUser
) -> Response:
    _cdc(request, session, user)
    return _alert_page(request, session, user, alert_id)


@router.post("/alerts/{alert_id}/ack", response_class=HTMLResponse)
async def alert_ack(
    request: Request,
    alert_id: int,
    session: SessionDep,
    user: CurrentUser,
    annotation: Annotated[str, Form()] = "",
) -> Response:
    _cdc(request, session, user)
    try:
        services.acknowledge_alert(session, actor=user, alert_id=alert_id, annotation=annotation)
    except ValidationFailed as e:
        return _alert_page(request, session, user, alert_id, errors=errors_by_field(e.errors))
    return redirect(f"/opinion/alerts/{alert_id}", msg="acked")


@router.post("/alerts/{alert_id}/annotate", response_class=HTMLResponse)
async def alert_annotate(
    request: Request,
    alert_id: int,
    session: SessionDep,
    user: CurrentUser,
    annotation: Annotated[str, Form()] = "",
) -> Response:
    _cdc(request, session, user)
    try:
        services.annotate_alert(session, actor=user, alert_id=alert_id, annotation=annotation)
    except ValidationFailed as e:
        return _alert_page(request, session, user, alert_id, errors=errors_by_field(e.errors))
    return redirect(f"/opinion/alerts/{alert_id}", msg="annotated")


# -- labelling and models --------------------------------------------------------------------


@router.get("/label", response_class=HTMLResponse)
def label_page(
    request: Request, session: SessionDep, user: CurrentUser, after: int = 0
) -> Response:
    _cdc(request, session, user)
    post, count = queries.next_to_label(session, actor=user, after=after)
    return _page(
        request,
        "opinion/label.html",
        user,
        tab="label",
        post=post,
        count=count,
        counts=queries.label_counts(session),
    )


@router.post("/label")
async def label_post(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    post_id: Annotated[int, Form()],
    label: Annotated[str, Form()] = "",
) -> Response:
    _cdc(request, session, user)
    services.label_post(session, actor=user, post_id=post_id, label=label)
    return redirect(f"/opinion/label?after={post_id}", msg="labelled")


@router.get("/models", response_class=HTMLResponse)
def models(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    _cdc(request, session, user)
    return _page(
        request,
        "opinion/models.html",
        user,
        tab="models",
        rows=queries.list_models(session, actor=user),
        counts=queries.label_counts(session),
        evaluation=None,
        errors={},
    )


@router.post("/models/train", response_class=HTMLResponse)
async def models_train(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    _cdc(request, session, user)
    try:
        services.train_from_labels(session, actor=user)
    except ValidationFailed as e:
        return _page(
            request,
            "opinion/models.html",
            user,
            status_code=422,
            tab="models",
            rows=queries.list_models(session, actor=user),
            counts=queries.label_counts(session),
            evaluation=None,
            errors=errors_by_field(e.errors),
        )
    return redirect("/opinion/models", msg="trained")


@router.post("/models/evaluate", response_class=HTMLResponse)
async def models_evaluate(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    _cdc(request, session, user)
    texts, labels = services.labelled_set(session)
    errors: dict[str, str] = {}
    evaluation = None
    if texts:
        evaluation = services.evaluate_model(session, actor=user, texts=texts, labels=labels)
    else:
        errors["labels"] = "还没有标注，无法评估"
    return _page(
        request,
        "opinion/models.html",
        user,
        tab="models",
        rows=queries.list_models(session, actor=user),
        counts=queries.label_counts(session),
        evaluation=evaluation,
        errors=errors,
    )


@router.post("/models/{model_id}/activate")
async def models_activate(
    request: Request, model_id: int, session: SessionDep, user: CurrentUser
) -> Response:
    _cdc(request, session, user)
    services.activate_model(session, actor=user, model_id=model_id)
    return redirect("/opinion/models", msg="activated")


@router.post("/models/lexicon")
async def models_lexicon(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    _cdc(request, session, user)
    services.deactivate_models(session, actor=user)
    return redirect("/opinion/models", msg="lexicon")


# -- sources ---------------------------------------------------------------------------------


def _sources_page(
    request: Request, session: Session, user: Any, status_code: int = 200, **extra: Any
) -> Response:
    return _page(
        request,
        "opinion/sources.html",
        user,
        status_code=status_code,
        tab="sources",
        rows=queries.list_sources(session, actor=user),
        result=extra.pop("result", None),
        errors=extra.pop("errors", {}),
        values=extra.pop("values", {}),
    )


@router.get("/sources", response_class=HTMLResponse)
def sources(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    _cdc(request, session, user)
    return _sources_page(request, session, user)


@router.post("/sources/upload", response_class=HTMLResponse)
async def upload(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    file: Annotated[UploadFile, File()],
    source: Annotated[str, Form()] = "",
) -> Response:
    _cdc(request, session, user)
    from fugong.opinion.ingest import parse_file

    limit = _settings(request).max_upload_bytes
    data = await file.read(limit + 1)
    name = file.filename or "upload"
    if len(data) > limit:
        return _sources_page(request, session, user, 422, errors={"file": f"文件超过 {limit} 字节"})
    parsed = parse_file(name, data)
    src = services.get_or_create_source(
        session, name=source.strip() or Path(name).stem, kind="file"
    )
    report = services.ingest_items(
        session,
        actor=user,
        source=src,
        items=parsed.items,
        key=_key(request),
        errors=parsed.errors,
    )
    services.analyse(session, actor=user)
    return _sources_page(request, session, user, result=report)


@router.post("/sources/feeds", response_class=HTMLResponse)
async def add_feed(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    name: Annotated[str, Form()] = "",
    url: Annotated[str, Form()] = "",
) -> Response:
    _cdc(request, session, user)
    try:
        services.add_feed(session, actor=user, name=name, url=url)
    except (ValidationFailed, Conflict) as e:
        errors = (
            errors_by_field(e.errors) if isinstance(e, ValidationFailed) else {"name": e.message}
        )
        return _sources_page(
            request, session, user, 422, errors=errors, values={"name": name, "url": url}
        )
    return redirect("/opinion/sources", msg="feed_added")


@router.post("/sources/{source_id}/fetch", response_class=HTMLResponse)
async def fetch(
    request: Request, source_id: int, session: SessionDep, user: CurrentUser
) -> Response:
    _cdc(request, session, user)
    from fugong.opinion.models import OpinionSource

    src = session.get(OpinionSource, source_id)
    if src is None:
        raise NotFound("来源不存在")
    report = services.fetch_feed(session, actor=user, source=src, key=_key(request))
    services.analyse(session, actor=user)
    return _sources_page(request, session, user, result=report)


@router.post("/analyse")
async def analyse(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    _cdc(request, session, user)
    services.analyse(session, actor=user)
    return redirect("/opinion/sources", msg="analysed")


# -- reports ---------------------------------------------------------------------------------


def _reports_page(
    request: Request, session: Session, user: Any, status_code: int = 200, **extra: Any
) -> Response:
    from fugong.opinion.report import week_of

    last = queries.latest_day(session) or queries.today()
    return _page(
        request,
        "opinion/reports.html",
        user,
        status_code=status_code,
        tab="reports",
        rows=queries.list_reports(session, actor=user),
        default_week=week_of(last),
        errors=extra.pop("errors", {}),
        values=extra.pop("values", {}),
    )


@router.get("/reports", response_class=HTMLResponse)
def reports(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    _cdc(request, session, user)
    return _reports_page(request, session, user)


@router.post("/reports", response_class=HTMLResponse)
async def build_report(
    request: Request, session: SessionDep, user: CurrentUser, week: Annotated[str, Form()] = ""
) -> Response:
    _cdc(request, session, user)
    try:
        row = services.build_report(session, actor=user, week=week)
    except ValidationFailed as e:
        return _reports_page(
            request, session, user, 422, errors=errors_by_field(e.errors), values={"week": week}
        )
    return redirect(f"/opinion/reports/{row.week}", msg="report")


_BODY = re.compile(r"<body[^>]*>(.*)</body>", re.S)


@router.get("/reports/{week}.pdf")
def report_pdf(request: Request, week: str, session: SessionDep, user: CurrentUser) -> Response:
    _cdc(request, session, user)
    row = queries.get_report(session, actor=user, week=week)
    return Response(
        row.pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="opinion-{row.week}.pdf"'},
    )


@router.get("/reports/{week}", response_class=HTMLResponse)
def report_view(request: Request, week: str, session: SessionDep, user: CurrentUser) -> Response:
    _cdc(request, session, user)
    row = queries.get_report(session, actor=user, week=week)
    m = _BODY.search(row.html)
    # The stored document was rendered by our own autoescaping template; its <style> block is
    # dropped (the CSP forbids inline styles) and opinion.css styles the body instead.
    body = Markup(m.group(1) if m else "")  # noqa: S704 - generated by our escaped template
    return _page(request, "opinion/report_view.html", user, tab="reports", row=row, body=body)
