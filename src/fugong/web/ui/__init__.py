"""Server-rendered pages, one module per domain."""

from fastapi import APIRouter

from fugong.web.ui import admin, core, desk, opinion, policies, screening, supplies, tracing

router = APIRouter(include_in_schema=False)
router.include_router(core.router)
router.include_router(admin.router)
router.include_router(desk.router)
router.include_router(desk.notifications_router)
router.include_router(supplies.router)
router.include_router(policies.router)
router.include_router(tracing.router)
router.include_router(opinion.router)
router.include_router(screening.router)

__all__ = ["router"]
