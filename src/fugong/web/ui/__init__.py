"""Server-rendered pages, one module per domain."""

from fastapi import APIRouter

from fugong.web.ui import admin, core, desk

router = APIRouter(include_in_schema=False)
router.include_router(core.router)
router.include_router(admin.router)
router.include_router(desk.router)
router.include_router(desk.notifications_router)

__all__ = ["router"]
