"""What one logged ``/predict`` costs the log writer's thread, in-process: building its row and
writing it to SQLite, per row, from a real call's answers.

    .venv/bin/python -m bench.log_row [--families classification,delay] [--rounds 7]

For each family it trains a champion, starts the real app in-process, answers one ``/predict``
through the route's own code (``answer_one``) and keeps what the predictor hands the log (its
``LogChunk``). Copies of that chunk with fresh time-ordered ids and rising timestamps are then
built into rows (``LogChunk.rows``, the writer thread's step) and written by the real
``PredictionLogWriter`` into a SQLite database migrated to head, timed with the process' CPU
clock, in interleaved rounds; the median round is printed.

Baselines, same process and rows: the one-row build against the columnar build a batch call's
rows go through (``_rows_from_columns``), and the write in 400-row batches (what a 50 ms flush
holds at ~8,000 requests a second) against 5,000-row batches (the per-commit share).

Why in-process: a server's requests/s moves 5-10 % between rounds here, more than a
microsecond a row; this measure moves a few %.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import itertools
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from bench import data
from bench.env import BenchEnv
from ia_continu.log.writer import PredictionLogWriter
from ia_continu.serve.answers import LogChunk
from ia_continu.serve.ids import new_id
from ia_continu.store import migrate
from ia_continu.store.engine import make_engine

_SMALL, _LARGE = 400, 5_000


async def _capture(env: BenchEnv, family: str) -> LogChunk:
    """The chunk one real ``/predict`` of ``family`` hands the log."""
    from api.main import create_app
    from api.routes.predict import answer_one

    settings = env.settings(f"log_row_{family}", family)
    engine = data.prepare(settings)
    data.timed_retrain(settings, engine)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        model = app.state.runtime.model(None)
        writer = model.predictor.writer
        assert writer is not None, "the prediction log is off"
        got: list[LogChunk] = []
        writer.submit_chunk = got.append  # type: ignore[method-assign]
        answer_one(model, data.one_row(family), None, None, None)
    engine.dispose()
    return got[0]


class _Copies:
    """Copies of one chunk, each with its own time-ordered id and a later timestamp."""

    def __init__(self, proto: LogChunk) -> None:
        self.proto = proto
        self.tick = itertools.count()

    def make(self, n: int) -> list[LogChunk]:
        out = []
        start = self.proto.answers.created_at
        for _ in range(n):
            chunk, answers = copy.copy(self.proto), copy.copy(self.proto.answers)
            answers.request_ids = [new_id()]
            answers.created_at = start + timedelta(microseconds=120 * next(self.tick))
            chunk.answers = answers
            out.append(chunk)
        return out


def _per_row(seconds: float, rows: int) -> float:
    return seconds / rows * 1e6


def _round(copies: _Copies, writer: PredictionLogWriter, n: int) -> dict[str, float]:
    chunks = copies.make(n)
    started = time.process_time()
    rows = [row for chunk in chunks for row in chunk.rows()]
    one_row = _per_row(time.process_time() - started, n)
    started = time.process_time()
    columnar = [row for chunk in chunks for row in chunk._rows_from_columns()]
    by_columns = _per_row(time.process_time() - started, n)
    assert columnar == rows  # the two builds give the same rows
    got = {"build, one-row path": one_row, "build, columnar path": by_columns}
    for size in (_SMALL, _LARGE):
        started = time.process_time()
        for i in range(0, n, size):
            writer._write(rows[i : i + size])
        got[f"write, {size:,}-row batches"] = _per_row(time.process_time() - started, n)
        rows = [row for chunk in copies.make(n) for row in chunk.rows()]
    return got


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--families", default="classification,delay")
    parser.add_argument("--rows", type=int, default=10_000, help="rows a round")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    env = BenchEnv.create()
    try:
        for family in args.families.split(","):
            copies = _Copies(asyncio.run(_capture(env, family)))
            with tempfile.TemporaryDirectory() as tmp:
                engine = make_engine(f"sqlite:///{Path(tmp) / 'log.db'}")
                migrate.upgrade(engine)
                writer = PredictionLogWriter(engine)
                _round(copies, writer, args.rows)  # warm: statements, pages
                rounds = [_round(copies, writer, args.rows) for _ in range(args.rounds)]
                engine.dispose()
            median = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
            one, columns = median["build, one-row path"], median["build, columnar path"]
            small, large = (
                median[f"write, {_SMALL:,}-row batches"],
                median[f"write, {_LARGE:,}-row batches"],
            )
            print(
                f"\n{family}: CPU of this process per logged one-row call, median of "
                f"{args.rounds} rounds of {args.rows:,} rows"
            )
            for name, value in median.items():
                print(f"  {name:28s} {value:6.2f} us a row")
            print(f"  one-row build / columnar build: {one / columns:.2f}")
            print(f"  write in {_SMALL:,}-row / {_LARGE:,}-row batches: {small / large:.2f}")
            print(f"  build + write ({_SMALL:,}-row batches): {one + small:.2f} us a row")
    finally:
        env.cleanup()


if __name__ == "__main__":
    main()
