"""API for opinion."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/opinion", tags=["opinion"])
