"""Sustained ``/predict/batch`` throughput, counting the prediction log: how many rows a second
are answered, and how many are answered *and written to the log*.

``bench.run`` times single 10,000-row calls: the log's rows are built and written afterwards,
in the writer's thread, so a call's latency does not include them. Under a sustained load the
writer shares the server's core, and the rows a second the log can keep up with is the figure
that holds. This bench starts the app (one uvicorn worker on core 0, as ``bench.run``) with
logging on and with logging off, alternately, and for each: sends ``--calls`` back-to-back
calls of 10,000 rows from another core, then waits until the log's pending rows
(``prediction_log_pending_rows`` in ``/metrics``) are back to zero.

    .venv/bin/python -m bench.batch_sustained [--family delay] [--calls 20] [--rounds 2]
                                              [--postgresql]

Keep ``--calls`` x 10,000 under ``IA_CONTINU_LOG_MAX_PENDING`` (200,000 by default): past it the
writer spools the newest rows to disk, which costs more CPU a row than writing them.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time

import httpx

from bench import data, serving
from bench.env import BenchEnv

_PENDING = re.compile(r"^prediction_log_pending_rows\S*\s+(\S+)", re.M)
_ROWS = 10_000


def _pending(client: httpx.Client, url: str) -> float:
    found = _PENDING.search(client.get(url + "/metrics").text)
    return float(found.group(1)) if found else 0.0


def _one(url: str, content: bytes, calls: int) -> dict:
    headers = {"Content-Type": "application/json"}
    with httpx.Client(timeout=120) as client:
        client.post(url + "/predict/batch", content=content, headers=headers)  # warm-up
        while _pending(client, url):
            time.sleep(0.05)
        started = time.perf_counter()
        latencies = []
        for _ in range(calls):
            t = time.perf_counter()
            response = client.post(url + "/predict/batch", content=content, headers=headers)
            latencies.append(time.perf_counter() - t)
            response.raise_for_status()
        answered = time.perf_counter() - started
        while _pending(client, url):
            time.sleep(0.01)
        logged = time.perf_counter() - started
    rows = calls * _ROWS
    return {
        "median_call_ms": statistics.median(latencies) * 1000,
        "answered_rows_per_s": rows / answered,
        "logged_rows_per_s": rows / logged,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--family", default="delay", choices=["classification", "delay"])
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--postgresql", action="store_true", help="log to a scratch PostgreSQL database"
    )
    args = parser.parse_args()
    env = BenchEnv.create()
    try:
        url = ""
        if args.postgresql:
            url = env.pg_url("sustained") or ""
            if not url:
                print(f"skipped: PostgreSQL unreachable ({env.pg_error})")
                return
        settings = env.settings("sustained", args.family, database_url=url)
        data.timed_retrain(settings, data.prepare(settings))
        content = json.dumps({"features": data.rows(args.family, _ROWS)}).encode()
        for r in range(args.rounds):
            got = {}
            for log in ("on", "off"):
                server = serving.start_app(
                    env.server_env(
                        settings, IA_CONTINU_PREDICTION_LOG_ENABLED=str(log == "on").lower()
                    ),
                    loop="asyncio",
                    log_dir=env.root,
                    name=f"sustained-{log}-{r}",
                )
                try:
                    got[log] = _one(server.url, content, args.calls)
                finally:
                    server.stop()
            on, off = got["on"], got["off"]
            print(
                f"round {r}, {args.family}, {'PostgreSQL' if url else 'SQLite'}, "
                f"{args.calls} calls of {_ROWS:,} rows: "
                f"logging on: call {on['median_call_ms']:.0f} ms, answered "
                f"{on['answered_rows_per_s']:,.0f} rows/s, answered and logged "
                f"{on['logged_rows_per_s']:,.0f} rows/s; logging off: call "
                f"{off['median_call_ms']:.0f} ms, {off['answered_rows_per_s']:,.0f} rows/s; "
                f"logged / off {on['logged_rows_per_s'] / off['answered_rows_per_s']:.2f}",
                flush=True,
            )
    finally:
        serving.stop_all()
        env.cleanup()


if __name__ == "__main__":
    main()
