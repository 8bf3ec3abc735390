"""Server-rendered pages, one module per domain."""

from fastapi import APIRouter

from fugong.web.ui import core

router = APIRouter(include_in_schema=False)
router.include_router(core.router)

__all__ = ["router"]
