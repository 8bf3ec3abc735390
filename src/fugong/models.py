"""Imports every domain's models so the metadata (and Alembic) sees all tables."""

from fugong.core import models as core_models

__all__ = ["core_models"]
