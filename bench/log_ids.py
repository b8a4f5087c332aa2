"""What the order of request ids costs the log writer: the same rows written through the real
``PredictionLogWriter`` into two SQLite databases migrated to head, one fed random UUID4s and
one the service's own time-ordered ids (``ia_continu.serve.ids.new_ids``, UUIDv7), both filled
with ``--filled`` rows of their kind first, then interleaved rounds of ``--rows`` rows.

    .venv/bin/python -m bench.log_ids [--filled 200000] [--rows 50000] [--rounds 3]

``prediction_log.request_id`` is indexed (outcomes join on it): a random id lands on a random
page of that index, a time-ordered one on its last pages.
"""

from __future__ import annotations

import argparse
import tempfile
import uuid
from pathlib import Path

from bench.log_indexes import _rows, timed_write
from ia_continu.log.rows import LogRow
from ia_continu.log.writer import PredictionLogWriter
from ia_continu.serve.ids import new_ids
from ia_continu.store import migrate
from ia_continu.store.engine import make_engine

_CALL_ROWS = 10  # ids made a call at a time, as /predict/batch does (one millisecond each)


def _with_ids(n: int, ordered: bool) -> list[LogRow]:
    rows = _rows(n, "")
    if ordered:
        ids: list[str] = []
        while len(ids) < n:
            ids.extend(new_ids(_CALL_ROWS))
    else:
        ids = [uuid.uuid4().hex for _ in range(n)]
    return [row._replace(request_id=rid) for row, rid in zip(rows, ids, strict=False)]


def _write(writer: PredictionLogWriter, rows: list[LogRow]) -> float:
    """CPU of this process (the writer thread's work) per row written, in µs."""
    return timed_write(writer, rows)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--filled", type=int, default=200_000)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        writers = {}
        for name in ("random_uuid4", "time_ordered"):
            engine = make_engine(f"sqlite:///{Path(tmp) / name}.db")
            migrate.upgrade(engine)
            writer = PredictionLogWriter(engine)
            writer.start()
            _write(writer, _with_ids(args.filled, name == "time_ordered"))
            writers[name] = writer
        for r in range(args.rounds):
            costs = {
                name: _write(writer, _with_ids(args.rows, name == "time_ordered"))
                for name, writer in writers.items()
            }
            rand, ordered = costs["random_uuid4"], costs["time_ordered"]
            print(
                f"round {r}: {args.rows} rows after {args.filled + r * args.rows}, CPU per row "
                f"written: random ids {rand:.1f} µs, time-ordered {ordered:.1f} µs, "
                f"{rand / ordered:.2f}x",
                flush=True,
            )
        for writer in writers.values():
            writer.stop()
            writer.engine.dispose()


if __name__ == "__main__":
    main()
