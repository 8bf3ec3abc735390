"""Bench: opinion ingest + analysis end to end, against snownlp's sentiment on the same posts.

    python bench/opinion.py [--posts 100000] [--batch 10000] [--snownlp-sample 3000]

Ours: generated posts (demo-style, 30 days, about a third reposts or near copies) go through
the real services on a fresh SQLite file, in batches as a crawler would deliver them:
``ingest_items`` (normalise to Simplified, keyed author hash, fingerprint, jieba segmentation
for full-text search, bulk insert with the FTS5 triggers) then ``analyse`` (sentiment with the
active trained classifier, duplicate grouping against the window), each batch committed. Start-up
(migrations, training the model, loading jieba's dictionary) is not timed.

Then ours again, sentiment alone (normalise, segment, classify; caches cleared), on the posts
snownlp scored: the like-for-like comparison of the two classifiers.

snownlp: ``SnowNLP(text).sentiments`` (its bundled naive Bayes, the usual Chinese baseline) on
the same posts. It is slow, so by default it runs on the first ``--snownlp-sample`` posts and its
throughput is reported from those (``--snownlp-sample 0`` runs it on all). snownlp is a
dev/bench dependency only; the application never imports it.

Wall-clock and CPU time are both printed: on a machine shared with other work the wall rate
drops while the CPU rate (posts per second of this process's CPU) stays put.

Goals (issue #7): >= 2,000 posts/s end to end on two cores, >= 10x snownlp's throughput.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date
from pathlib import Path

from fugong.db import make_engine, make_session_factory, migrate, unit_of_work
from fugong.opinion import services
from fugong.opinion.demo import synthetic_posts


def ours(posts: list, batch: int, db: Path) -> tuple[float, float, services.AnalyseReport]:
    from fugong.opinion.text import sample_labelled, tokens

    engine = make_engine(f"sqlite:///{db}")
    migrate.upgrade(engine)
    factory = make_session_factory(engine)
    texts, labels = sample_labelled()
    with unit_of_work(factory) as session:
        services.train_model(session, actor=None, texts=texts, labels=labels, activate=True)
    tokens("预热分词词典")  # jieba builds its prefix dictionary on first use (about a second)
    key = b"bench-author-key-" + b"x" * 32
    total = services.AnalyseReport()
    started, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(posts), batch):
        with unit_of_work(factory) as session:
            src = services.get_or_create_source(session, name="bench", kind="push")
            services.ingest_items(
                session, actor=None, source=src, items=posts[i : i + batch], key=key
            )
            r = services.analyse(session, actor=None)
        total.analysed += r.analysed
        total.duplicates += r.duplicates
        total.model = r.model
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    engine.dispose()
    return elapsed, cpu, total


def ours_sentiment(texts: list[str]) -> tuple[float, float]:
    """Sentiment alone from raw text, like ``SnowNLP(text).sentiments``: normalise, segment,
    classify, with the segmentation caches cleared first (no work carried over from above)."""
    from fugong.opinion.text import normalise, sample_labelled, segment, train

    texts_, labels = sample_labelled()
    model = train(texts_, labels)
    segment._cut_cached.cache_clear()
    segment._tokens_cached.cache_clear()
    started, cpu = time.perf_counter(), time.process_time()
    model.predict([normalise(t) for t in texts])
    return time.perf_counter() - started, time.process_time() - cpu


def snow(texts: list[str]) -> tuple[float, float]:
    from snownlp import SnowNLP

    SnowNLP("预热").sentiments  # noqa: B018 - loads its model before timing
    started, cpu = time.perf_counter(), time.process_time()
    for t in texts:
        SnowNLP(t).sentiments  # noqa: B018 - the property computes the score
    return time.perf_counter() - started, time.process_time() - cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--posts", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--snownlp-sample", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=2020)
    args = ap.parse_args()

    posts = synthetic_posts(args.posts, start=date(2020, 2, 1), days=30, seed=args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        elapsed, cpu, report = ours(posts, args.batch, Path(tmp) / "bench.db")
    rate, cpu_rate = args.posts / elapsed, args.posts / cpu
    print(
        f"ours (ingest + analysis, SQLite, batches of {args.batch}): {args.posts} posts in "
        f"{elapsed:.1f} s = {rate:,.0f} posts/s  (CPU {cpu:.1f} s = {cpu_rate:,.0f} posts per "
        f"CPU-second)  [model {report.model}; {report.duplicates} reposts/near copies grouped]"
    )
    n_snow = args.posts if args.snownlp_sample <= 0 else min(args.snownlp_sample, args.posts)
    snow_s, snow_cpu = snow([p.text for p in posts[:n_snow]])
    snow_rate, snow_cpu_rate = n_snow / snow_s, n_snow / snow_cpu
    scope = "all posts" if n_snow == args.posts else f"first {n_snow} of the same posts"
    print(
        f"snownlp sentiment only ({scope}): {snow_s:.1f} s = {snow_rate:,.0f} posts/s  "
        f"(CPU {snow_cpu:.1f} s = {snow_cpu_rate:,.0f} posts per CPU-second)"
    )
    print(
        f"ratio ours end to end / snownlp sentiment: {rate / snow_rate:.1f}x wall, "
        f"{cpu_rate / snow_cpu_rate:.1f}x CPU  (goals: >= 2,000 posts/s, >= 10x)"
    )
    sent_s, sent_cpu = ours_sentiment([p.text for p in posts[:n_snow]])
    print(
        f"ours sentiment only (same {n_snow} posts, cold caches): {n_snow / sent_s:,.0f} posts/s "
        f"(CPU {n_snow / sent_cpu:,.0f}/s); ratio to snownlp: {snow_s / sent_s:.1f}x wall, "
        f"{snow_cpu / sent_cpu:.1f}x CPU"
    )


if __name__ == "__main__":
    main()
