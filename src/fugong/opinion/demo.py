"""Demo data for the opinion domain, loaded by ``fugong demo`` after the core demo: two
synthetic weeks (2020-W09 and 2020-W10) of posts about the epidemic in Huangpu, with reposts,
a Traditional-Chinese copy, a rumour and a mask-shortage spike on 2020-03-05; analysed with a
classifier trained on the shipped labelled sample, alerts detected, the W10 report built.

Deterministic (fixed seed) and fast: about a thousand posts.
"""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from fugong.opinion import services
from fugong.opinion.ingest import CST, RawItem
from fugong.opinion.models import OpinionPost

DEMO_WEEKS = ("2020-W09", "2020-W10")
SPIKE_DAY = date(2020, 3, 5)
_START = date(2020, 2, 24)
_DAYS = 14
_KEY = b"fugong-demo-author-key-not-for-production-use!!"

_PLACES = ("萝岗", "夏港", "联和", "永和", "长岭", "云埔", "南岗", "科学城", "鱼珠", "文冲")
# Each post joins an opening, a middle and a closing clause of one sentiment (plus a place), so
# posts differ the way real ones do and only true reposts fall into duplicate groups.
_CLAUSES = {
    "negative": (
        (
            "{p}的药店又买不到口罩了",
            "{p}小区封控通知太突然",
            "核酸检测点排队三个小时",
            "厂里复工了但是没有发口罩",
            "{p}有人高价转卖口罩",
            "隔离酒店条件很差",
        ),
        (
            "排了一个小时队",
            "菜也买不到",
            "现场很混乱",
            "工人都很担心",
            "一包卖到一百块",
            "投诉没人回应",
            "物业电话一直打不通",
            "老人孩子都在外面等",
        ),
        (
            "太让人着急了",
            "很失望",
            "太过分了",
            "让人很生气",
            "到底有没有人管",
            "真是受够了",
            "心里很不踏实",
        ),
    ),
    "neutral": (
        (
            "{p}街道发布通知",
            "区政府公布{p}企业复工申报流程",
            "{p}今日公布无症状感染者行程",
            "{p}公交线路恢复运营",
            "疾控中心提醒{p}密接人员",
            "{p}园区今天统计复工人数",
        ),
        (
            "明日起在社区服务中心开展核酸检测",
            "需提交防疫方案",
            "请市民对照自查",
            "乘客需佩戴口罩并扫码乘车",
            "请配合居家观察十四天",
            "企业需每日上报员工健康情况",
            "详情见街道公众号",
        ),
        (
            "咨询电话已公布",
            "截止日期为本周五",
            "具体安排另行通知",
            "请相互转告",
            "以官方发布为准",
            "",
        ),
    ),
    "positive": (
        (
            "感谢{p}社区志愿者送菜上门",
            "{p}的工厂今天顺利复工",
            "{p}核酸检测点工作人员态度特别好",
            "点赞{p}街道",
            "{p}医护人员辛苦了",
            "政府给{p}小微企业减免租金",
        ),
        (
            "防疫措施很到位",
            "十分钟就做完了",
            "口罩预约发放很有序",
            "谢谢你们守护我们的城市",
            "老板说终于能缓口气了",
            "员工都很安心",
            "大家都领到了",
        ),
        ("真的太暖心了", "为你们点赞", "相信很快就能好起来", "加油", "心里踏实多了", "感动"),
    ),
}
_SPIKE = (
    (
        "{p}所有药店的口罩都卖光了",
        "口罩断货了",
        "{p}口罩一罩难求",
        "想给家里老人买口罩",
        "{p}的超市口罩货架空空",
        "单位要求戴口罩上班",
    ),
    (
        "跑了五家药店都没有",
        "网上订的也迟迟不发货",
        "排队两小时空手而归",
        "电话问了一圈都说没货",
        "只能把旧口罩消毒再用",
        "价格还一直涨",
    ),
    ("怎么办", "急死了", "希望政府赶紧想办法", "有没有人知道哪里还有", "太难了", ""),
)
_OPENERS = (
    "",
    "",
    "今天",
    "刚刚",
    "昨晚",
    "早上",
    "中午",
    "下班路上",
    "听邻居说",
    "我家楼下",
    "朋友圈都在说",
    "说实话",
    "唉",
    "真的",
)
_RUMOUR = "听说喝板蓝根能预防新冠，{p}的药店板蓝根都被抢光了"
_WATCH = (("板蓝根*预防", "2020 年初流传的谣言"), ("自来水*病毒", ""), ("全城封锁", ""))


def _posts(rng: random.Random) -> list[tuple[RawItem, str]]:
    out: list[tuple[RawItem, str]] = []
    n = 0
    for d in range(_DAYS):
        day = _START + timedelta(days=d)
        per_day = rng.randint(38, 48)
        for _ in range(per_day):
            label = rng.choices(("negative", "neutral", "positive"), (3, 4, 3))[0]
            text = _compose(rng, _CLAUSES[label])
            out.append((_item(n, day, rng, text), label))
            n += 1
        if day == SPIKE_DAY:
            for _ in range(60):
                text = _compose(rng, _SPIKE)
                out.append((_item(n, day, rng, text), "negative"))
                n += 1
        if day >= SPIKE_DAY - timedelta(days=1):
            for _ in range(rng.randint(2, 4)):
                out.append((_item(n, day, rng, _RUMOUR.format(p=rng.choice(_PLACES))), "negative"))
                n += 1
    # Reposts with small edits, and a Traditional-Chinese copy: grouped, not counted twice.
    first = out[5][0]
    for i, prefix in enumerate(("转发：", "//@南岗街坊: ", "")):
        text = prefix + first.text + ("!!" if i == 2 else "")
        out.append((_item(n, first.posted_at.astimezone(CST).date(), rng, text), out[5][1]))
        n += 1
    trad = "感謝{p}社區志願者送菜上門，真的太暖心了".format(p="萝岗")
    out.append((_item(n, _START + timedelta(days=3), rng, trad), "positive"))
    return out


def _compose(rng: random.Random, pools: tuple[tuple[str, ...], ...]) -> str:
    parts = [rng.choice(_OPENERS)] + [rng.choice(pool) for pool in pools]
    return "，".join(p for p in parts if p).format(p=rng.choice(_PLACES))


def _item(n: int, day: date, rng: random.Random, text: str) -> RawItem:
    at = datetime.combine(day, time(rng.randint(7, 22), rng.randint(0, 59)), CST)
    return RawItem(
        external_id=f"demo-{n:05d}",
        posted_at=at,
        text=text,
        url=f"https://weibo.example/p/{n}",
        author=f"user{rng.randint(1, 400)}",
    )


def synthetic_posts(n: int, *, start: date, days: int, seed: int = 0) -> list[RawItem]:
    """``n`` posts spread evenly over ``days`` days from ``start``, in time order: a concrete
    detail and three clauses of the demo's pools each, and 30 % reposts of a recent post (for
    benchmarks)."""
    rng = random.Random(seed)  # noqa: S311 - synthetic data, not a secret
    clauses = [c for pools in _CLAUSES.values() for pool in pools for c in pool if c]
    out: list[RawItem] = []
    span = days * 86400
    for i in range(n):
        at = datetime.combine(start, time(0), CST) + timedelta(seconds=span * i // max(n, 1))
        if out and rng.random() < 0.3:
            # A repost of a recent post: a marker, a mention or a changed character.
            base = out[rng.randrange(max(0, len(out) - 500), len(out))].text
            text = rng.choice(("转发：", "@街坊 ", "")) + base + rng.choice(("", "！", "。。"))
        else:
            # A concrete detail (where, which building, when) as real posts carry one.
            building, hour, minute = rng.randint(1, 60), rng.randint(6, 23), rng.randint(0, 59)
            detail = f"{rng.choice(_PLACES)}{building}栋{hour}点{minute}分"
            parts = [rng.choice(_OPENERS), detail, *rng.sample(clauses, 3)]
            text = "，".join(p for p in parts if p).format(p=rng.choice(_PLACES))
        out.append(
            RawItem(
                external_id=f"b{i}", posted_at=at, text=text, author=f"u{rng.randrange(50_000)}"
            )
        )
    return out


def load_opinion_demo(session: Session) -> None:
    """Load the opinion demo (skipped when posts already exist)."""
    from fugong.opinion.text import sample_labelled

    if session.scalar(select(OpinionPost.id).limit(1)) is not None:
        return
    rng = random.Random(2020)  # noqa: S311 - synthetic data, not a secret
    posts = _posts(rng)
    source = services.get_or_create_source(session, name="微博（演示）", kind="file")
    services.ingest_items(session, actor=None, source=source, items=[p for p, _ in posts], key=_KEY)
    texts, labels = sample_labelled()
    # Naive Bayes trains in milliseconds; the demo must load fast (analysts retrain in the UI).
    services.train_model(
        session, actor=None, texts=texts, labels=labels, activate=True, algorithm="nb"
    )
    services.analyse(session, actor=None)
    for phrase, note in _WATCH:
        services.add_watch_phrase(session, actor=None, phrase=phrase, note=note or None)
    # An analyst's first labels, so the labelling page and "train from labels" have a start.
    ids = session.scalars(select(OpinionPost.id).order_by(OpinionPost.id).limit(60)).all()
    for (_, label), post_id in zip(posts[:60], ids, strict=True):
        services.label_post(session, actor=None, post_id=post_id, label=label)
    start, end = _START + timedelta(days=7), _START + timedelta(days=_DAYS - 1)
    config = services.AlertConfig(ears=services.parse_ears(""))
    services.detect_alerts(session, actor=None, start=start, end=end, config=config)
    services.build_report(session, actor=None, week=DEMO_WEEKS[1])
