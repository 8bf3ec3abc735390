"""Tracing engines behind one interface (:class:`Engine`): DuckDB (default), Spark, reference."""

from __future__ import annotations

from fugong.tracing.engines.base import Engine

__all__ = ["Engine", "get_engine"]


def get_engine(name: str, **options: object) -> Engine:
    """The engine called ``name`` (duckdb, spark or reference); heavy imports stay lazy."""
    if name == "duckdb":
        from fugong.tracing.engines.duckdb import DuckDBEngine

        return DuckDBEngine(**options)  # type: ignore[arg-type]
    if name == "spark":
        from fugong.tracing.engines.spark import SparkEngine

        return SparkEngine(**options)  # type: ignore[arg-type]
    if name == "reference":
        from fugong.tracing.engines.reference import ReferenceEngine

        return ReferenceEngine()
    raise ValueError(f"unknown engine {name!r} (duckdb, spark, reference)")
