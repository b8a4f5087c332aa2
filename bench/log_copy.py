"""What the prediction log costs the API process on PostgreSQL: the real
``PredictionLogWriter`` (one ``COPY`` a batch) against the same writer with the
``executemany`` INSERT it used before, into one database migrated to head, interleaved rounds
of the same rows (time-ordered ids, as the service makes them).

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
        writers = {"executemany": _ExecutemanyWriter(engine), "copy": PredictionLogWriter(engine)}
        for writer in writers.values():
            writer.start()
        timed_write(writers["copy"], _with_ids(20_000, True))  # warm: connection, pages, plans
        for r in range(args.rounds):
            got = {name: timed_write(w, _with_ids(args.rows, True)) for name, w in writers.items()}
            (old_cpu, old_wall), (cpu, wall) = got["executemany"], got["copy"]
            print(
                f"round {r}: {args.rows} rows; this process' CPU per row: executemany "
                f"{old_cpu:.2f} µs, COPY {cpu:.2f} µs ({old_cpu / cpu:.2f}x less); wall per "
                f"row {old_wall:.2f} / {wall:.2f} µs",
                flush=True,
            )
        for writer in writers.values():
            writer.stop()
    finally:
        engine.dispose()
        admin.execute(f"DROP DATABASE IF EXISTS {_SCRATCH} WITH (FORCE)")
        admin.close()


if __name__ == "__main__":
    main()
