"""``GET /dashboard``: seed 001's monitoring page, plain HTML + JS served from ``api/static``.

No build step: the page is static and reads the JSON endpoints (``/api/ml-monitoring/*``,
``/api/feature-flags/status``, ``/models``, ``/api/drift/latest``) from the browser.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

router = APIRouter(tags=["dashboard"])


@router.get("/dashboard", include_in_schema=False)
def dashboard() -> FileResponse:
    # no-cache: after an upgrade the browser must fetch the new page (it revalidates by ETag).
    return FileResponse(
        STATIC_DIR / "dashboard.html", media_type="text/html", headers={"Cache-Control": "no-cache"}
    )


@router.get("/dashboard/", include_in_schema=False)
def dashboard_slash() -> RedirectResponse:
    return RedirectResponse("/dashboard")


# The page's CSS and JS (and any vendored library) travel with the package.
router.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
