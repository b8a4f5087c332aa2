"""score_batch: score a whole dataset with one model's champion, every row logged as if it
had come through ``/predict``, so that its outcome joins later by request id.

The rows come from a file (``*.csv``, ``*.parquet``, ``*.jsonl``: one column per feature, by
name, plus an id column, ``request_id`` by default, and optionally ``booking_id``) or from a
stored dataset (``generation_id``: its rows get the ids ``<model>-g<generation_id>-<row>``).
The answers are written to a CSV file (request id, prediction as the API answers it,
confidence, who answered and the version) and to the prediction log.

How: in this process, with the serving parts of the API (``ia_continu.serve``): a
``ModelHolder`` loads the champion from the registry as the API does, a ``Predictor`` answers
through the same rollout flag, fallback and shadow rules, and a ``PredictionLogWriter``
writes the rows with their context ids (spooling to the API's spool folder if the database
is away). Chosen over posting the rows to the running API's ``/predict/batch`` because a
nightly job should not depend on the API being up, nor count against its rate limit, its
per-call row limit and its request threads while it serves live traffic; the answers and the
logged rows are the same either way. What differs: the API's Prometheus counters do not see
these predictions (the prediction log and the monitoring routes do).

The file is read twice, in chunks: once to check every row (a bad cell stops the run
before anything is scored or logged, naming the rows), once to score. A row number in an
error is the 1-based data row of the file.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from sqlalchemy import Engine

from flows.common import alert_flow_failure, model_view, run_engine
from ia_continu.config import Settings
from ia_continu.errors import InvalidInput
from ia_continu.families import ModelFamily, get_family
from ia_continu.serve.answers import Answers, Context
from ia_continu.store.engine import session_scope
from ia_continu.vocab import ServedBy

SUFFIXES = (".csv", ".parquet", ".jsonl")


@dataclass(slots=True)
class BatchSummary:
    model: str
    rows: int = 0
    logged: int = 0  # rows the prediction log holds now (the rest are spooled to disk)
    spooled: int = 0
    served_by: dict[str, int] = field(default_factory=dict)
    model_versions: list[str] = field(default_factory=list)
    output: str | None = None


@dataclass(frozen=True, slots=True)
class Chunk:
    start: int  # the 0-based data row of the chunk's first row
    X: np.ndarray
    request_ids: list[str]
    booking_ids: list[str | None] | None


def file_frames(path: Path, id_columns: list[str], rows: int) -> Iterator[pd.DataFrame]:
    """The file in frames of ``rows`` rows; id columns read as text."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        yield from pd.read_csv(path, chunksize=rows, dtype=dict.fromkeys(id_columns, str))
    elif suffix == ".parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=rows):
            yield batch.to_pandas()
    elif suffix == ".jsonl":
        yield from pd.read_json(path, lines=True, chunksize=rows, dtype=False)
    else:
        raise InvalidInput(f"{path.name}: score a {', '.join(SUFFIXES)} file")


def file_chunks(
    family: ModelFamily, path: Path, id_column: str, booking_column: str, rows: int
) -> Iterator[Chunk]:
    from api.schemas import first_invalid_identifier

    start = 0
    for frame in file_frames(path, [id_column, booking_column], rows):
        where = f"{path.name}, rows {start + 1}-{start + len(frame)}"
        if id_column not in frame.columns:
            raise InvalidInput(f"{path.name}: no {id_column!r} column (the request ids)")
        try:
            X = family.encode_frame(frame)
        except InvalidInput as exc:
            raise type(exc)(f"{where}: {exc}") from None
        ids = [None if pd.isna(v) else str(v) for v in frame[id_column]]
        bookings = (
            [None if pd.isna(v) else str(v) for v in frame[booking_column]]
            if booking_column in frame.columns
            else None
        )
        for name, values in ((id_column, ids), (booking_column, bookings or [])):
            if (bad := first_invalid_identifier(values)) is not None:
                raise InvalidInput(f"{path.name}, row {start + bad[0] + 1}: {name} {bad[1]}")
        if any(v is None for v in ids):
            row = ids.index(None)
            raise InvalidInput(f"{path.name}, row {start + row + 1}: {id_column} is empty")
        yield Chunk(start, X, [str(v) for v in ids], bookings)
        start += len(frame)


def dataset_chunks(
    settings: Settings, engine: Engine, generation_id: int, rows: int
) -> Iterator[Chunk]:
    from ia_continu.learn.datasets import load_dataset

    family = get_family(settings.family, settings)
    with session_scope(engine) as session:
        X = load_dataset(session, family, generation_id).X
    for start in range(0, len(X), rows):
        part = X[start : start + rows]
        ids = [f"{settings.family}-g{generation_id}-{start + i + 1}" for i in range(len(part))]
        yield Chunk(start, part, ids, None)


def answer_rows(family: ModelFamily, chunk: Chunk, answers: Answers) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "request_id": answers.request_ids,
            "booking_id": chunk.booking_ids or [None] * len(chunk.X),
            "prediction": family.labels(answers.prediction),
            "confidence": answers.confidence.round(6),
            "served_by": np.where(answers.by_ml, ServedBy.ml, ServedBy.fallback),
            "decision": answers.decision,
            "model_version": [
                answers.model_version if ml else ServedBy.fallback for ml in answers.by_ml
            ],
        }
    )


@task(cache_policy=NO_CACHE)
def score(
    settings: Settings,
    engine: Engine,
    source: Path | int,
    rows: int,
    output: Path,
    id_column: str,
    booking_column: str,
) -> BatchSummary:
    from ia_continu.log.writer import PredictionLogWriter
    from ia_continu.serve.champion import ModelHolder
    from ia_continu.serve.flag import RolloutCache
    from ia_continu.serve.predictor import Predictor

    holder = ModelHolder(settings, engine)
    holder.refresh(force=True)
    if holder.load_error:  # the API would answer with the fallback; a batch job says so
        raise RuntimeError(holder.load_error)
    family = holder.family
    writer = PredictionLogWriter.from_settings(engine, settings)
    predictor = Predictor(settings, holder, RolloutCache(engine, settings), writer)
    summary = BatchSummary(settings.family, output=str(output))
    served: Counter[str] = Counter()
    versions: set[str] = set()
    output.parent.mkdir(parents=True, exist_ok=True)
    writer.start()
    try:
        chunks = _source_chunks(settings, engine, family, source, rows, id_column, booking_column)
        for i, chunk in enumerate(chunks):
            answers = predictor.predict(
                chunk.X, Context(request_ids=list(chunk.request_ids), booking_ids=chunk.booking_ids)
            )
            table = answer_rows(family, chunk, answers)
            table.to_csv(output, mode="w" if i == 0 else "a", header=i == 0, index=False)
            served.update(table["served_by"])
            versions.update(v for v in table["model_version"] if v != ServedBy.fallback)
            summary.rows += len(table)
            writer.flush(timeout=60)  # back-pressure: a chunk logged before the next one
    finally:
        writer.stop()
    summary.logged, summary.spooled = writer.written, writer.spooled
    summary.served_by = dict(served)
    summary.model_versions = sorted(versions)
    return summary


def _source_chunks(
    settings: Settings,
    engine: Engine,
    family: ModelFamily,
    source: Path | int,
    rows: int,
    id_column: str,
    booking_column: str,
) -> Iterator[Chunk]:
    if isinstance(source, Path):
        return file_chunks(family, source, id_column, booking_column, rows)
    return dataset_chunks(settings, engine, source, rows)


@task
def check_file(
    settings: Settings, path: Path, id_column: str, booking_column: str, rows: int
) -> int:
    """Every row checked (features and ids) before any is scored; the number of rows."""
    family = get_family(settings.family, settings)
    return sum(len(c.X) for c in file_chunks(family, path, id_column, booking_column, rows))


@flow(name="score_batch", on_failure=[alert_flow_failure])
def score_batch(
    model: str | None = None,
    path: str | None = None,
    generation_id: int | None = None,
    output: str | None = None,
    id_column: str = "request_id",
    booking_column: str = "booking_id",
    chunk_rows: int = 10_000,
) -> dict[str, Any]:
    """Score ``path`` (a file) or the stored dataset ``generation_id`` with ``model``'s
    champion (None: the default model); the answers go to ``output`` (default
    ``<data_dir>/predictions/<model>/<name>.predictions.csv``) and to the prediction log."""
    settings = model_view(model)
    if (path is None) == (generation_id is None):
        raise InvalidInput("score a file (path) or a stored dataset (generation_id), one of them")
    source: Path | int = Path(path) if path is not None else int(generation_id or 0)
    name = source.stem if isinstance(source, Path) else f"dataset-{source}"
    target = (
        Path(output)
        if output
        else (settings.data_dir / "predictions" / settings.family / f"{name}.predictions.csv")
    )
    with run_engine(settings) as engine:
        if isinstance(source, Path):
            check_file(settings, source, id_column, booking_column, chunk_rows)
        summary = score(settings, engine, source, chunk_rows, target, id_column, booking_column)
    get_run_logger().info("score_batch %s: %s", settings.family, summary)
    return asdict(summary)


if __name__ == "__main__":
    score_batch()
