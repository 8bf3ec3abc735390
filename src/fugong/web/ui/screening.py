"""screening pages."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from fugong.web.deps import form_csrf_guard

router = APIRouter(prefix="/screening", dependencies=[Depends(form_csrf_guard)])
