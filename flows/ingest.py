"""ingest: new labelled data for one model, every day, each piece once.

Two sources, both stored through ``ia_continu.learn.imports.import_dataset`` (streamed,
validated by the model's family, all or nothing) with ``origin="ingest"``:

- a folder (default ``<IA_CONTINU_DATA_DIR>/inbox/<model>``): every ``*.csv``, ``*.parquet``
  and ``*.jsonl`` file. A file is known by its content (SHA-256 of its bytes, the
  ``datasets`` fingerprint, unique per model): a file already loaded is skipped without
  being parsed, and a file whose content changed is loaded again. A bad file (a cell the
  model refuses, a file that is not its format) does not stop the others: it is reported in
  the result and alerted with the 422 message, and its fingerprint is kept (a Prefect
  Variable per model and folder) so that it is retried only once its content changed.
- a SQL query (``query`` on ``database_url``, run with ``sqlalchemy.text``): its rows, as
  JSON Lines, are one dataset whose fingerprint is the SHA-256 of the query text and the
  rows' content, so the same rows from the same query load once. The rows are held in
  memory (a daily extract); a query returning millions of rows belongs in a file.

``ingest_every_model`` (the daily deployment) runs ``ingest`` for every declared model that
has a folder under the inbox: dropping files into ``inbox/<model>/`` is all a new model needs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from io import BytesIO
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from sqlalchemy import Engine, create_engine, select, text, update

from flows.common import (
    alert_flow_failure,
    for_each_model,
    model_view,
    run_engine,
    state_key,
    swap_state,
)
from ia_continu.catalog import catalog
from ia_continu.config import Settings
from ia_continu.errors import DuplicateDataset, InvalidInput
from ia_continu.families import get_family
from ia_continu.store.engine import session_scope
from ia_continu.store.tables import Dataset
from notifications import Alert, Severity, notify

# File suffix -> import_dataset's format.
FORMATS = {".csv": "csv", ".parquet": "parquet", ".jsonl": "json"}


@dataclass(slots=True)
class IngestSummary:
    model: str
    loaded: list[dict[str, Any]] = field(default_factory=list)  # name, generation_id, rows
    skipped: list[str] = field(default_factory=list)  # already loaded, or refused unchanged
    refused: list[dict[str, str]] = field(default_factory=list)  # name, error


def inbox(settings: Settings) -> Path:
    return settings.data_dir / "inbox"


def file_fingerprint(path: Path) -> str:
    """SHA-256 of the file's bytes: the fingerprint import_dataset stores."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1024 * 1024):
            digest.update(block)
    return digest.hexdigest()


def already_loaded(engine: Engine, model: str, fingerprint: str) -> int | None:
    """The dataset of ``model`` holding this content, if any."""
    with session_scope(engine) as session:
        return session.scalar(
            select(Dataset.generation_id).where(
                Dataset.family == model, Dataset.fingerprint == fingerprint
            )
        )


@task(cache_policy=NO_CACHE)
def load_file(settings: Settings, engine: Engine, path: Path) -> dict[str, Any]:
    """One file into a dataset; InvalidInput (the 422 of the API) propagates to the caller."""
    from ia_continu.learn.imports import import_dataset

    result = import_dataset(
        engine,
        get_family(settings.family, settings),
        path,
        fmt=FORMATS[path.suffix.lower()],  # type: ignore[arg-type]
        source_name=path.name,
        origin="ingest",
    )
    return {"name": path.name, "generation_id": result.generation_id, "rows": result.rows}


def refused_alert(model: str, name: str, error: str) -> Alert:
    return Alert(
        f"Ingest: file refused ({model})",
        f"{name}: {error}"[:1500],
        Severity.warning,
        {"model": model, "file": name},
        key=f"ingest-refused-{model}-{name}",
    )


def ingest_folder(settings: Settings, engine: Engine, folder: Path, summary: IngestSummary) -> None:
    model = settings.family
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in FORMATS)
    # The fingerprints of files refused before, by name: not parsed again until they change.
    variable = state_key("ingest_refused", settings.database_url, model, str(folder.resolve()))
    from prefect.variables import Variable

    refused_before: dict[str, str] = dict(Variable.get(variable, default=None) or {})
    refused_now: dict[str, str] = {}
    for path in files:
        fingerprint = file_fingerprint(path)
        if refused_before.get(path.name) == fingerprint:
            refused_now[path.name] = fingerprint
            summary.skipped.append(path.name)
            continue
        if already_loaded(engine, model, fingerprint) is not None:
            summary.skipped.append(path.name)
            continue
        try:
            summary.loaded.append(load_file(settings, engine, path))
        except DuplicateDataset:  # loaded meanwhile (another run, an upload of the same file)
            summary.skipped.append(path.name)
        except InvalidInput as exc:
            refused_now[path.name] = fingerprint
            summary.refused.append({"name": path.name, "error": str(exc)})
            notify(refused_alert(model, path.name, str(exc)), settings)
    swap_state(variable, refused_now)


def query_rows(database_url: str, query: str) -> bytes:
    """The query's rows as JSON Lines (one object per row, columns by name)."""
    source = create_engine(database_url)
    try:
        with source.connect() as conn:
            result = conn.execute(text(query))
            rows = [dict(row._mapping) for row in result]
    finally:
        source.dispose()
    return b"".join(
        json.dumps(row, default=_json_value, sort_keys=True).encode() + b"\n" for row in rows
    )


def _json_value(value: Any) -> Any:
    # NUMERIC columns come back as Decimal, dates as date/datetime.
    return float(value) if isinstance(value, Decimal) else str(value)


@task(cache_policy=NO_CACHE)
def ingest_query(
    settings: Settings, engine: Engine, database_url: str, query: str
) -> tuple[str, Any]:
    """("loaded", {name, generation_id, rows}), ("skipped", name) or ("refused", {name, error})."""
    from ia_continu.learn.imports import import_dataset

    model = settings.family
    lines = query_rows(database_url, query)
    fingerprint = hashlib.sha256(query.encode() + b"\n" + lines).hexdigest()
    name = f"query {fingerprint[:12]}"
    if already_loaded(engine, model, fingerprint) is not None:
        return "skipped", name
    try:
        # allow_duplicate: the file fingerprint (of these JSON lines) is replaced by the one
        # of query and rows just after, which is what tells the next run "already loaded".
        result = import_dataset(
            engine,
            get_family(model, settings),
            BytesIO(lines),
            fmt="json",
            source_name=query[:2000],
            origin="ingest",
            allow_duplicate=True,
        )
    except InvalidInput as exc:
        notify(refused_alert(model, name, str(exc)), settings)
        return "refused", {"name": name, "error": str(exc)}
    with session_scope(engine) as session:
        session.execute(
            update(Dataset)
            .where(Dataset.generation_id == result.generation_id)
            .values(fingerprint=fingerprint)
        )
    return "loaded", {"name": name, "generation_id": result.generation_id, "rows": result.rows}


@flow(name="ingest", on_failure=[alert_flow_failure])
def ingest(
    model: str | None = None,
    folder: str | None = None,
    query: str | None = None,
    database_url: str | None = None,
) -> dict[str, Any]:
    """Load ``model``'s new files from ``folder`` (default ``<data_dir>/inbox/<model>``; a
    missing folder is nothing to load) and, when ``query`` is given, the rows it returns
    from ``database_url`` (default: the service's own database)."""
    settings = model_view(model)
    summary = IngestSummary(settings.family)
    directory = Path(folder) if folder else inbox(settings) / settings.family
    with run_engine(settings) as engine:
        if directory.is_dir():
            ingest_folder(settings, engine, directory, summary)
        if query:
            outcome, entry = ingest_query(
                settings, engine, database_url or settings.database_url, query
            )
            getattr(summary, outcome).append(entry)
    get_run_logger().info(
        "ingest %s: %d loaded, %d skipped, %d refused",
        settings.family,
        len(summary.loaded),
        len(summary.skipped),
        len(summary.refused),
    )
    return asdict(summary)


def models_with_inbox(settings: Settings) -> list[str]:
    """Declared models with a folder under the inbox."""
    root = inbox(settings)
    return [name for name in catalog(settings).names if (root / name).is_dir()]


@flow(name="ingest_every_model", on_failure=[alert_flow_failure])
def ingest_every_model(models: list[str] | None = None) -> dict[str, Any]:
    """ingest for each model (None: every declared model with a folder under the inbox)."""
    return for_each_model(
        models,
        lambda name: ingest(model=name, return_state=True),
        default=models_with_inbox(Settings()),
    )


if __name__ == "__main__":
    ingest_every_model()
