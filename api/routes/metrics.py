"""``GET /metrics``: the Prometheus text exposition."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from api import metrics
from api.deps import RuntimeDep

router = APIRouter(tags=["monitoring"])


@router.get("/metrics", include_in_schema=False)
def prometheus_metrics(runtime: RuntimeDep) -> Response:
    metrics.refresh_gauges(runtime.flags.get())
    metrics.refresh_challenger_gauges({n: s.holder for n, s in runtime.services.items()})
    body, content_type = metrics.exposition()
    return Response(body, media_type=content_type)
