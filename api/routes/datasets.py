"""``POST /datasets``: a labelled file (CSV, Parquet, JSON) into the model's datasets.

The body is the file itself. It is streamed as it arrives to a temporary file under
``<data_dir>/uploads`` (never held in memory; ``api.guards.BodySizeLimit`` holds it to
``IA_CONTINU_MAX_DATASET_BYTES``), then read in chunks by ``ia_continu.learn.imports`` in a
worker thread, so the event loop keeps answering while a large file is checked and stored.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status
from pydantic import BaseModel
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from api.deps import Admin, FamilyDep, RuntimeDep, SessionDep
from api.guards import KeyFirstRoute
from ia_continu.learn.imports import Format, ImportResult, import_dataset
from ia_continu.store.tables import Dataset

router = APIRouter(tags=["data"], route_class=KeyFirstRoute)

MEDIA_TYPES: dict[str, Format] = {
    "text/csv": "csv",
    "application/vnd.apache.parquet": "parquet",
    "application/x-parquet": "parquet",
    "application/x-ndjson": "json",
    "application/jsonl": "json",
    "application/json": "json",
}
_SPOOL_BYTES = 1024 * 1024  # a temporary file stays in memory up to this size


class DatasetPublic(BaseModel):
    generation_id: int
    source: str
    source_name: str | None
    rows: int
    created_at: datetime


def media_format(content_type: str | None) -> Format:
    """The format a Content-Type names (parameters such as charset ignored); 415 otherwise."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    fmt = MEDIA_TYPES.get(media)
    if fmt is None:
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            f"Content-Type {media or '(none)'!r} is not a dataset format; send one of "
            f"{', '.join(MEDIA_TYPES)}",
        )
    return fmt


@router.post(
    "/datasets",
    response_model=ImportResult,
    status_code=status.HTTP_201_CREATED,
    dependencies=[Admin],
    responses={409: {"description": "the same content was imported for this model"}},
)
async def import_file(
    request: Request,
    runtime: RuntimeDep,
    family: FamilyDep,
    name: Annotated[
        str | None, Query(max_length=500, description="recorded as the dataset's source name")
    ] = None,
    allow_duplicate: Annotated[
        bool, Query(description="import content this model already has, again")
    ] = False,
) -> ImportResult:
    """Import the body (a CSV, Parquet or JSON/JSON Lines file) as one dataset, all rows or
    none: a bad cell answers 422 naming its row and column, and nothing is stored."""
    fmt = media_format(request.headers.get("content-type"))
    # Under the data folder rather than /tmp: a container's /tmp is often a small tmpfs, and
    # an upload may be gigabytes.
    uploads = runtime.settings.data_dir / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    with tempfile.SpooledTemporaryFile(_SPOOL_BYTES, dir=str(uploads)) as spool:
        # Local writes of at most a network chunk: quick enough not to leave the loop for.
        async for chunk in request.stream():
            spool.write(chunk)
        spool.seek(0)
        return await run_in_threadpool(
            import_dataset,
            runtime.engine,
            family,
            spool,
            fmt=fmt,
            source_name=name,
            allow_duplicate=allow_duplicate,
        )


@router.get("/datasets", response_model=list[DatasetPublic], dependencies=[Admin])
def list_datasets(
    session: SessionDep,
    family: FamilyDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[DatasetPublic]:
    """The model's datasets, newest first: generated, imported or ingested."""
    rows = session.execute(
        select(Dataset)
        .where(Dataset.family == family.name)
        .order_by(Dataset.generation_id.desc())
        .limit(limit)
    ).scalars()
    return [
        DatasetPublic(
            generation_id=d.generation_id,
            source=d.source or "simulator",  # rows from before sources were recorded
            source_name=d.source_name,
            rows=d.samples_count,
            # Stored naive UTC (both backends): sent with its zone, as RFC 3339 wants.
            created_at=d.created_at.replace(tzinfo=UTC),
        )
        for d in rows
    ]
