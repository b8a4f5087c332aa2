"""Import a labelled dataset from a file (CSV, Parquet, JSON): streamed, checked, all or nothing.

The file is read in chunks of ``chunk_rows`` rows (pandas' CSV reader, Parquet row batches,
JSON Lines read line by line), so a million-row file never sits in memory whole; each chunk
is validated and encoded by the model's own family (the same checks as ``/predict``) and
bulk-inserted. Everything happens in one transaction: a bad cell in the last row leaves no
``datasets`` row and no sample behind. A problem names the **file row** (1-based data row:
the CSV header and JSON Lines' blank lines are not counted) and the column.

Formats:

- ``csv``: a header line with the column names, comma-separated.
- ``parquet``: any Parquet file; only the needed columns are read.
- ``json``: JSON Lines (one object per line, streamed), or a top-level JSON array of row
  objects, read whole and therefore limited to :data:`MAX_JSON_ARRAY_BYTES`.

Columns are matched by name: one per feature and one for the target (the declaration's
``target.name``); other columns are ignored. The SHA-256 of the file's bytes is its
fingerprint: the same content imported twice for one model is refused (``DuplicateDataset``)
unless ``allow_duplicate`` is set.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, cast

import numpy as np
from pydantic import BaseModel
from sqlalchemy import Engine, Table, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ia_continu.declared.schema import Declaration
from ia_continu.errors import (
    DuplicateDataset,
    InvalidActual,
    InvalidFeatures,
    InvalidInput,
    UnreadableDataset,
)
from ia_continu.families import ModelFamily
from ia_continu.store.schemas import schema_id
from ia_continu.store.tables import Dataset, DatasetSample, utcnow

if TYPE_CHECKING:
    import pandas as pd

Format = Literal["csv", "parquet", "json"]
FORMATS: tuple[Format, ...] = ("csv", "parquet", "json")
MAX_JSON_ARRAY_BYTES = 64 * 1024 * 1024  # a JSON array is parsed whole; JSON Lines streams
_READ_BLOCK = 1024 * 1024
_ROW = re.compile(r"(^|; )row (\d+):")
SAMPLES = cast(Table, DatasetSample.__table__)


class ImportResult(BaseModel):
    generation_id: int
    rows: int
    model: str
    source_name: str | None
    fingerprint: str
    feature_names: list[str]


Source = str | Path | IO[bytes]


def import_dataset(
    engine: Engine,
    family: ModelFamily,
    source: Source,
    *,
    fmt: Format,
    source_name: str | None = None,
    origin: str = "import",
    chunk_rows: int = 50_000,
    allow_duplicate: bool = False,
) -> ImportResult:
    """Store the rows of ``source`` (a path or a binary file object) as one dataset of
    ``family``; see the module docstring. Raises InvalidFeatures / InvalidActual naming the
    file row and column, UnreadableDataset for a file that is not ``fmt``, DuplicateDataset
    when this model already has the same content."""
    if fmt not in FORMATS:
        raise UnreadableDataset(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")
    if isinstance(source, str | Path):
        source_name = source_name or Path(source).name
        with open(source, "rb") as handle:
            return _import(
                engine, family, handle, fmt, source_name, origin, chunk_rows, allow_duplicate
            )
    return _import(engine, family, source, fmt, source_name, origin, chunk_rows, allow_duplicate)


def _import(
    engine: Engine,
    family: ModelFamily,
    handle: IO[bytes],
    fmt: Format,
    source_name: str | None,
    origin: str,
    chunk_rows: int,
    allow_duplicate: bool,
) -> ImportResult:
    declaration = _declaration(family)
    target = declaration.target.name
    # The Python families check whole matrices ("hour must be an integer in 0..23"): their
    # declaration's encoder, which holds the same rules, checks first and names the cells.
    from ia_continu.declared.features import FeatureEncoder  # pandas: with an import only

    checker = None if _own_declaration(family) else FeatureEncoder(declaration)
    reader = HashingReader(handle)
    chunks = _CHUNKERS[fmt](reader, declaration, max(1, chunk_rows))
    now = utcnow()
    rows = 0
    with Session(engine) as session, session.begin():
        dataset = Dataset(
            family=family.name,
            samples_count=0,
            drift=False,
            hour_generated=now.hour,
            created_at=now,
            source=origin,
            source_name=source_name,
            schema_id=schema_id(session, family.name, list(family.feature_names)),
        )
        session.add(dataset)
        session.flush()
        gid = dataset.generation_id
        for frame in chunks:
            _check_columns(frame, declaration)
            if frame.empty:  # a CSV with a header and no rows
                continue
            if checker is not None:
                _at_rows(rows, frame, _checked(checker.frame, InvalidFeatures))
                _at_rows(rows, frame[target], _checked(checker.target, InvalidActual))
            X = _at_rows(rows, frame, _checked(family.encode_frame, InvalidFeatures))
            y = _at_rows(rows, frame[target], _checked(family.target_codes, InvalidActual))
            # Core insert on the session's connection (same transaction): the ORM's bulk path
            # spent two thirds of an import collecting per-row parameters it does not need.
            session.connection().execute(
                insert(SAMPLES),
                [
                    {"generation_id": gid, "features": x, "target": t}
                    for x, t in zip(X.round(6).tolist(), y.tolist(), strict=True)
                ],
            )
            rows += len(frame)
        if rows == 0:
            raise UnreadableDataset("the file has no data rows")
        fingerprint = reader.finish()
        if not allow_duplicate:
            _refuse_duplicate(session, family.name, fingerprint)
        # An allowed duplicate keeps no fingerprint: the index is unique per model.
        kept = None if allow_duplicate else fingerprint
        try:
            with session.begin_nested():
                session.execute(
                    update(Dataset)
                    .where(Dataset.generation_id == gid)
                    .values(samples_count=rows, fingerprint=kept)
                )
        except IntegrityError:  # the same file committed meanwhile by another import
            _refuse_duplicate(session, family.name, fingerprint)
            raise
    return ImportResult(
        generation_id=gid,
        rows=rows,
        model=family.name,
        source_name=source_name,
        fingerprint=fingerprint,
        feature_names=list(family.feature_names),
    )


def _check_columns(frame: pd.DataFrame, declaration: Declaration) -> None:
    """Absent columns are the file's fault, not a row's: said once, before any row check."""
    names = set(map(str, frame.columns))
    absent = [f.name for f in declaration.features if not f.optional and f.name not in names]
    if absent:
        raise InvalidFeatures(
            f"missing column{'s' if len(absent) > 1 else ''} {', '.join(absent)}; "
            f"the features are {', '.join(declaration.feature_names)}"
        )
    if declaration.target.name not in names:
        raise InvalidActual(f"missing column {declaration.target.name} (the target)")


def _refuse_duplicate(session: Session, model: str, fingerprint: str) -> None:
    earlier = session.scalar(
        select(Dataset.generation_id).where(
            Dataset.family == model, Dataset.fingerprint == fingerprint
        )
    )
    if earlier is not None:
        raise DuplicateDataset(
            f"model {model!r} already has this content as dataset {earlier} "
            f"(same SHA-256 {fingerprint[:12]}...); allow_duplicate=true imports it again"
        )


def _own_declaration(family: ModelFamily) -> Declaration | None:
    declared = getattr(family, "declaration", None)
    return declared if isinstance(declared, Declaration) else None


def _declaration(family: ModelFamily) -> Declaration:
    """The declaration describing ``family``: its own, or the built-in one of a Python family."""
    declared = _own_declaration(family)
    if declared is not None:
        return declared
    from ia_continu.catalog import catalog

    return catalog().declaration(family.name)


# --- row numbers ----------------------------------------------------------------------


def _checked(
    encode: Callable[[Any], np.ndarray], error: type[InvalidInput]
) -> Callable[[Any], np.ndarray]:
    """``encode`` whose stray failures on odd cells (a nested JSON value is unhashable, an
    integer of 400 digits overflows a float) are the domain error, so they get a row too."""

    def run(data: Any) -> np.ndarray:
        try:
            return encode(data)
        except InvalidInput:
            raise
        except (TypeError, ValueError, OverflowError) as exc:
            raise error(f"a value that cannot be read: {exc}") from None

    return run


def _at_rows(offset: int, data: Any, encode: Callable[[Any], np.ndarray]) -> np.ndarray:
    """``encode(data)`` with the problems' rows as file rows (1-based, ``offset`` rows before).

    The declared encoder names chunk rows (0-based): they are shifted. A family whose message
    names no row (the Python families' checks work on whole matrices) is asked again on
    halves of the chunk until the first failing row is found."""
    try:
        return encode(data)
    except InvalidInput as exc:
        message = str(exc)
        if _ROW.search(message):
            shifted = _ROW.sub(lambda m: f"{m[1]}row {offset + int(m[2]) + 1}:", message)
            raise type(exc)(shifted) from None
        if len(data) > 1:
            row, first = _first_failing(data, encode)
            raise type(exc)(f"row {offset + row + 1}: {first}") from None
        raise type(exc)(f"row {offset + 1}: {message}") from None


def _first_failing(data: Any, encode: Callable[[Any], np.ndarray]) -> tuple[int, str]:
    low, high = 0, len(data)  # the failing rows are within [low, high)
    message = ""
    while high - low > 1:
        mid = (low + high) // 2
        try:
            encode(data.iloc[low:mid])
        except InvalidInput as exc:
            high, message = mid, str(exc)
            continue
        low = mid
    try:
        encode(data.iloc[low:high])
    except InvalidInput as exc:
        message = str(exc)
    return low, message


# --- reading --------------------------------------------------------------------------


class HashingReader(io.RawIOBase):
    """A binary reader that computes the SHA-256 of everything read through it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.sha = hashlib.sha256()
        self.digest: str | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.sha.update(data)
        return n

    def finish(self) -> str:
        """Read what a parser left unread (a trailing newline...) and give the digest; later
        calls give it again without reading (Parquet reads the file again after hashing)."""
        if self.digest is None:
            while block := self.raw.read(_READ_BLOCK):
                self.sha.update(block)
            self.digest = self.sha.hexdigest()
        return self.digest


def _csv_dtypes(declaration: Declaration) -> dict[str, Any]:
    """Category columns whose declared values are texts are read as texts ("01" stays "01")."""
    texts = {
        f.name
        for f in declaration.features
        if f.type == "category" and all(isinstance(v, str) for v in f.values or ())
    }
    classes = declaration.target.classes
    if classes and all(isinstance(c, str) for c in classes):
        texts.add(declaration.target.name)
    return dict.fromkeys(texts, str)


def _numbers(frame: pd.DataFrame, declaration: Declaration) -> pd.DataFrame:
    """One text cell makes pandas read a whole CSV column as text: turn back into numbers
    every cell that is one, so the encoder names only the cell that is not."""
    import pandas as pd  # with a file import, not with every process that serves the API

    numeric = {f.name for f in declaration.features if f.type in ("number", "integer")}
    if not declaration.target.classes:
        numeric.add(declaration.target.name)
    for name in numeric & set(frame.columns):
        column = frame[name]
        if column.dtype == object:
            parsed = pd.to_numeric(column, errors="coerce")
            keep = parsed.isna() & column.notna()
            frame[name] = parsed.astype(object).where(~keep, column)
    return frame


def _csv_chunks(
    reader: HashingReader, declaration: Declaration, rows: int
) -> Iterator[pd.DataFrame]:
    import pandas as pd

    stream = io.BufferedReader(reader, _READ_BLOCK)
    try:
        chunks = pd.read_csv(
            stream,
            chunksize=rows,
            dtype=_csv_dtypes(declaration),
            skipinitialspace=True,
            encoding="utf-8-sig",  # a spreadsheet's byte-order mark is not part of a name
        )
        for frame in chunks:
            yield _numbers(frame, declaration)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise UnreadableDataset(f"not a readable CSV file: {_first_line(exc)}") from None


def _parquet_chunks(
    reader: HashingReader, declaration: Declaration, rows: int
) -> Iterator[pd.DataFrame]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    # Parquet needs random access (its footer comes last): a source that cannot seek is
    # spooled into a temporary file; either way it is hashed in one sequential pass.
    try:
        parquet = pq.ParquetFile(_seekable(reader))
    except (pa.ArrowException, OSError) as exc:
        raise UnreadableDataset(f"not a readable Parquet file: {_first_line(exc)}") from None
    wanted = [*declaration.feature_names, declaration.target.name]
    present = set(parquet.schema_arrow.names)
    columns = [c for c in wanted if c in present]
    try:
        for batch in parquet.iter_batches(batch_size=rows, columns=columns):
            yield batch.to_pandas()
    except (pa.ArrowException, OSError) as exc:
        raise UnreadableDataset(f"not a readable Parquet file: {_first_line(exc)}") from None


def _seekable(reader: HashingReader) -> IO[bytes]:
    import tempfile

    if reader.raw.seekable():  # hashed in one pass, then read again where Parquet wants
        reader.finish()
        reader.raw.seek(0)
        return reader.raw
    # Returned open: Parquet reads it after this; the OS removes it once it is closed.
    spool = tempfile.TemporaryFile()  # noqa: SIM115
    while block := reader.read(_READ_BLOCK):
        spool.write(block)
    spool.seek(0)
    return spool


def _json_chunks(
    reader: HashingReader, declaration: Declaration, rows: int
) -> Iterator[pd.DataFrame]:
    import pandas as pd

    stream = io.BufferedReader(reader, _READ_BLOCK)
    head = stream.peek(64).lstrip()
    if head.startswith(b"["):
        yield from _json_array(stream, rows)
        return
    batch: list[Any] = []
    count = 0
    for line in stream:
        if not line.strip():
            continue
        count += 1
        try:
            record = json.loads(line, parse_int=_json_int)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise UnreadableDataset(f"row {count}: not a JSON object: {exc}") from None
        if not isinstance(record, dict):
            raise UnreadableDataset(f"row {count}: not a JSON object ({type(record).__name__})")
        batch.append(record)
        if len(batch) == rows:
            yield pd.DataFrame.from_records(batch)
            batch = []
    if batch:
        yield pd.DataFrame.from_records(batch)


def _json_array(stream: IO[bytes], rows: int) -> Iterator[pd.DataFrame]:
    import pandas as pd

    data = stream.read(MAX_JSON_ARRAY_BYTES + 1)
    if len(data) > MAX_JSON_ARRAY_BYTES:
        raise UnreadableDataset(
            f"a JSON array is read whole, so at most {MAX_JSON_ARRAY_BYTES} bytes: "
            "send a larger file as JSON Lines (one object per line)"
        )
    try:
        records = json.loads(data, parse_int=_json_int)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise UnreadableDataset(f"not valid JSON: {exc}") from None
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise UnreadableDataset(f"row {i + 1}: not a JSON object ({type(record).__name__})")
    del data
    for start in range(0, len(records), rows):
        yield pd.DataFrame.from_records(records[start : start + rows])


def _json_int(text: str) -> int | float:
    # Beyond 18 digits an integer is no count or code: a float (inf when huge), which the
    # encoder refuses by value rather than overflowing on it.
    return int(text) if len(text) <= 18 else float(text)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


_CHUNKERS: dict[str, Callable[[HashingReader, Declaration, int], Iterator[pd.DataFrame]]] = {
    "csv": _csv_chunks,
    "parquet": _parquet_chunks,
    "json": _json_chunks,
}
