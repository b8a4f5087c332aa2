"""Dataset import throughput and memory: does ``import_dataset`` really stream?

    .venv/bin/python -m bench.import_rows                 # 1,000,000 rows, a few minutes
    .venv/bin/python -m bench.import_rows --rows 200000   # quicker

Writes a bike_traffic CSV of ``--rows`` rows (in blocks, so writing it costs little memory),
then imports it through :func:`ia_continu.learn.imports.import_dataset` into a fresh SQLite
file and, when reachable, a fresh PostgreSQL schema (``IA_CONTINU_BENCH_PG_URL``, default
``postgresql+psycopg://postgres@127.0.0.1:5432/test``; the schema is dropped afterwards).
Each import runs in its own child process, so its peak RSS (``ru_maxrss``) is its own: the
figure reported is the peak growth during the import, set against the file's size. A
streaming import stays flat as the file grows; reading the file whole would need several
times its size. Not part of the test suite; prints figures only.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

PG_URL = os.environ.get(
    "IA_CONTINU_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
WRITE_BLOCK = 100_000


def write_csv(path: Path, rows: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    with path.open("w") as out:
        for start in range(0, rows, WRITE_BLOCK):
            n = min(WRITE_BLOCK, rows - start)
            block = pd.DataFrame(
                {
                    "hour": rng.integers(0, 24, n),
                    "weekday": rng.integers(0, 7, n),
                    "weather": rng.choice(["clear", "cloudy", "rain", "snow"], n),
                    "holiday": rng.random(n) < 0.05,
                    "counter": rng.choice(["north_bridge", "river_path", "station"], n),
                    "count": rng.integers(0, 2000, n),
                }
            )
            block.to_csv(out, index=False, header=start == 0)


def peak_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def one_import(url: str, csv: Path, chunk_rows: int) -> dict[str, float]:
    """In a child process: migrate, warm up every import path, then time the import."""
    import io

    from ia_continu.families import get_family
    from ia_continu.learn.imports import import_dataset
    from ia_continu.store import migrate
    from ia_continu.store.engine import make_engine

    engine = make_engine(url)
    migrate.upgrade(engine)
    family = get_family("bike_traffic")
    with csv.open("rb") as head:  # a small import first: libraries loaded, caches warm
        sample = b"".join(head.readline() for _ in range(2001))
    import_dataset(engine, family, io.BytesIO(sample), fmt="csv", allow_duplicate=True)
    before = peak_kib()
    start = time.perf_counter()
    result = import_dataset(engine, family, csv, fmt="csv", chunk_rows=chunk_rows)
    seconds = time.perf_counter() - start
    engine.dispose()
    return {
        "rows": result.rows,
        "seconds": seconds,
        "rows_per_s": result.rows / seconds,
        "peak_rss_before_mib": before / 1024,
        "peak_rss_growth_mib": (peak_kib() - before) / 1024,
    }


def pg_schema_url() -> tuple[str, str] | None:
    from sqlalchemy import create_engine, text

    schema = f"bench_import_{uuid.uuid4().hex[:8]}"
    try:
        admin = create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        admin.dispose()
    except Exception as exc:
        print(f"PostgreSQL skipped ({PG_URL}): {str(exc).splitlines()[0]}")
        return None
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}", schema


def drop_schema(schema: str) -> None:
    from sqlalchemy import create_engine, text

    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def child(url: str, csv: Path, chunk_rows: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.import_rows", "--child", url, str(csv), str(chunk_rows)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--chunk-rows", type=int, default=50_000)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        url, csv, chunk = args.child
        print(json.dumps(one_import(url, Path(csv), int(chunk))))
        return

    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        csv = Path(tmp) / "bike_traffic.csv"
        start = time.perf_counter()
        write_csv(csv, args.rows)
        size_mib = csv.stat().st_size / 2**20
        print(
            f"{args.rows:,} rows, {size_mib:.1f} MiB CSV written in "
            f"{time.perf_counter() - start:.1f} s; chunks of {args.chunk_rows:,} rows"
        )
        targets = [("sqlite", f"sqlite:///{Path(tmp) / 'import.db'}", None)]
        pg = pg_schema_url()
        if pg is not None:
            targets.append(("postgresql", pg[0], pg[1]))
        try:
            for name, url, _ in targets:
                r = child(url, csv, args.chunk_rows)
                print(
                    f"{name:<10}  {r['rows']:,.0f} rows in {r['seconds']:.1f} s = "
                    f"{r['rows_per_s']:,.0f} rows/s; peak RSS growth "
                    f"{r['peak_rss_growth_mib']:.0f} MiB (file {size_mib:.0f} MiB, "
                    f"ratio {r['peak_rss_growth_mib'] / size_mib:.2f}; "
                    f"process at {r['peak_rss_before_mib']:.0f} MiB before)"
                )
        finally:
            for _, _, schema in targets:
                if schema is not None:
                    drop_schema(schema)


if __name__ == "__main__":
    main()
