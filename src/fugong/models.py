"""Imports every domain's models so the metadata (and Alembic) sees all tables."""

from fugong.core import models as core_models
from fugong.desk import models as desk_models
from fugong.opinion import models as opinion_models
from fugong.policies import models as policies_models
from fugong.screening import models as screening_models
from fugong.supplies import models as supplies_models

__all__ = [
    "core_models",
    "desk_models",
    "opinion_models",
    "policies_models",
    "screening_models",
    "supplies_models",
]
