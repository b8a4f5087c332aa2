"""``GET /dashboard``: the monitoring page, plain HTML + JS served from ``api/static``.

No build step: the page is static and reads the JSON endpoints from the browser. A picker
lists the declared models (``/models/declared``; first choice: ``?model=`` or the service's
default model) and every panel reads that model's routes (``/models/{model}/monitoring/*``,
``/models/{model}/rollout/status``, ``/models/{model}``, ``/models/{model}/drift/latest``,
``/models/{model}/challenger``, ``/models/{model}/monitoring/estimates``); the cards follow
its task (MAE, RMSE, R² for a regressor; precision, recall, F1 for a classifier). The
challenger panel puts champion and challenger side by side (share, rows, outcomes, realised
and estimated metric, error rate, fallback share, latency) with the test, the verdict and
its reason, and the recent steps of the arm.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

router = APIRouter(tags=["dashboard"])

# The page loads only its own CSS and JS, fetches only this API, and draws its charts as SVG
# from script: nothing inline, nothing from elsewhere, never framed (the favicon is data:).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
PAGE_HEADERS = {
    # no-cache: after an upgrade the browser must fetch the new page (it revalidates by ETag).
    "Cache-Control": "no-cache",
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers without CSP level 2
    "Referrer-Policy": "no-referrer",
}


@router.get("/dashboard", include_in_schema=False)
def dashboard() -> FileResponse:
    return FileResponse(STATIC_DIR / "dashboard.html", media_type="text/html", headers=PAGE_HEADERS)


@router.get("/dashboard/", include_in_schema=False)
def dashboard_slash() -> RedirectResponse:
    return RedirectResponse("/dashboard")


class _StaticFiles(StaticFiles):
    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        # A script or style is used only when served with its real type, never sniffed.
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


# The page's CSS and JS (and any vendored library) travel with the package.
router.mount("/static", _StaticFiles(directory=STATIC_DIR), name="static")
