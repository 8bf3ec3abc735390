"""REST API v1: one router per domain, all behind the same authentication and scoping."""

from fastapi import APIRouter, Depends

from fugong.web.api.v1 import core, opinion, policies, screening, supplies
from fugong.web.deps import api_write_guard

router = APIRouter(dependencies=[Depends(api_write_guard)])
router.include_router(core.router)
router.include_router(supplies.router)
router.include_router(policies.router)
router.include_router(opinion.router)
router.include_router(screening.router)

__all__ = ["router"]
