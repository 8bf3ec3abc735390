"""API for screening."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/screening", tags=["screening"])
