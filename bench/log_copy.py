"""What the prediction log costs the API process on PostgreSQL: the real
``PredictionLogWriter`` (one binary ``COPY`` a batch) against the same writer with text
``COPY`` and with the ``executemany`` INSERT it used before, into one database migrated to
head, interleaved rounds of the same rows (time-ordered ids, as the service makes them).

    .venv/bin/python -m bench.log_copy [--rows 50000] [--rounds 3] [--url postgresql+psycopg://...]

The figures are this process' CPU per row (the writer thread's work: what shares the serving
core) and the wall time per row (the server's work included). It creates and drops a scratch
database ``ia_continu_bench_log`` next to the one ``--url`` names.
"""

from __future__ import annotations

import argparse

from sqlalchemy import make_url

from bench.log_ids import _with_ids
from bench.log_indexes import timed_write
from ia_continu.log.rows import LogRow
from ia_continu.log.writer import PredictionLogWriter
from ia_continu.store import migrate
from ia_continu.store.engine import make_engine

_SCRATCH = "ia_continu_bench_log"


class _ExecutemanyWriter(PredictionLogWriter):
    """The writer's PostgreSQL path before COPY: the driver's executemany of one INSERT."""

    def _write(self, rows: list[LogRow]) -> None:
        with self.engine.begin() as conn:
            conn.exec_driver_sql(self._statement(), rows)


class _TextCopyWriter(PredictionLogWriter):
    """The writer's PostgreSQL path before binary COPY: text COPY, the server parsing each
    number and timestamp back from its text."""

    def _write_copy(self, rows: list[LogRow]) -> None:
        self._copy(rows, binary=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    import psycopg

    base = make_url(args.url)
    dsn = base.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        admin = psycopg.connect(dsn, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        print(f"skipped: PostgreSQL not reachable at {base.host}:{base.port} ({exc})")
        return
    admin.execute(f"DROP DATABASE IF EXISTS {_SCRATCH} WITH (FORCE)")
    admin.execute(f"CREATE DATABASE {_SCRATCH}")
    engine = make_engine(base.set(database=_SCRATCH).render_as_string(hide_password=False))
    try:
        migrate.upgrade(engine)
        writers = {
            "executemany": _ExecutemanyWriter(engine),
            "text COPY": _TextCopyWriter(engine),
            "binary COPY": PredictionLogWriter(engine),
        }
        for writer in writers.values():
            writer.start()
        for writer in writers.values():  # warm: connection, pages, plans
            timed_write(writer, _with_ids(5_000, True))
        for r in range(args.rounds):
            got = {name: timed_write(w, _with_ids(args.rows, True)) for name, w in writers.items()}
            cpu = got["binary COPY"][0]
            figures = "; ".join(
                f"{name} {c:.2f} µs ({c / cpu:.2f}x binary COPY's), wall {wall:.2f} µs"
                for name, (c, wall) in got.items()
            )
            print(f"round {r}: {args.rows} rows; this process' CPU per row: {figures}", flush=True)
        for writer in writers.values():
            writer.stop()
    finally:
        engine.dispose()
        admin.execute(f"DROP DATABASE IF EXISTS {_SCRATCH} WITH (FORCE)")
        admin.close()


if __name__ == "__main__":
    main()
