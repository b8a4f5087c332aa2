"""What a SIGKILL under load costs: answered predictions that never reached the log.

    .venv/bin/python -m bench.kill [--seconds 5] [--clients 8] [--flush-ms 50]

A clean SIGTERM loses nothing (tests/resilience/test_faults.py); a SIGKILL gives the writer no
chance to drain, so whatever waited in memory is gone: at most one flush window's worth of
rows (plus one batch being written). This measures it, for the README. SQLite, loopback only,
bounded in time and requests.
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import tempfile
import threading
import time
from pathlib import Path

import httpx

from tests.live import start_api


def run(seconds: float, clients: int, flush_ms: int) -> dict:
    root = Path(tempfile.mkdtemp(prefix="ia-continu-kill-"))
    env = {
        "IA_CONTINU_ENVIRONMENT": "test",
        "IA_CONTINU_DATA_DIR": str(root),
        "IA_CONTINU_API_KEY": "bench-key-0123456789",
        "IA_CONTINU_RATE_LIMIT_ENABLED": "false",
        "IA_CONTINU_LOG_FLUSH_INTERVAL_MS": str(flush_ms),
    }
    api = start_api(env, root)
    answered: list[tuple[str, float]] = []
    stop = threading.Event()

    def load(worker: int) -> None:
        with httpx.Client(base_url=api.url, timeout=5) as http:
            for i in range(1_000_000):  # bounded; stops on the event or the server's death
                if stop.is_set():
                    return
                rid = f"k{worker}-{i}"
                try:
                    r = http.post("/predict", json={"features": [0.1, 0.2], "request_id": rid})
                except httpx.HTTPError:
                    return
                if r.status_code == 200:
                    answered.append((rid, time.monotonic()))

    threads = [threading.Thread(target=load, args=(w,), daemon=True) for w in range(clients)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    killed_at = time.monotonic()
    os.kill(api.process.pid, signal.SIGKILL)
    api.process.wait(10)
    stop.set()
    for t in threads:
        t.join(10)
    conn = sqlite3.connect(root / "ia_continu.db")
    logged = {r[0] for r in conn.execute("SELECT request_id FROM prediction_log")}
    conn.close()
    answered_before = [(rid, at) for rid, at in answered if at <= killed_at]
    lost = [(rid, at) for rid, at in answered_before if rid not in logged]
    rate = len(answered_before) / seconds
    oldest_lost = killed_at - min((at for _, at in lost), default=killed_at)
    return {
        "answered": len(answered_before),
        "logged": len(logged),
        "lost": len(lost),
        "lost_share": len(lost) / max(len(answered_before), 1),
        "requests_per_s": rate,
        "flush_window_ms": flush_ms,
        "rows_in_one_window": rate * flush_ms / 1000,
        "oldest_lost_ms_before_kill": oldest_lost * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--flush-ms", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    for n in range(args.runs):
        r = run(args.seconds, args.clients, args.flush_ms)
        print(
            f"run {n + 1}: answered {r['answered']:,} at {r['requests_per_s']:,.0f} req/s; "
            f"lost on SIGKILL {r['lost']} ({r['lost_share']:.3%}); one {r['flush_window_ms']} ms "
            f"window = {r['rows_in_one_window']:.0f} rows; oldest lost answer "
            f"{r['oldest_lost_ms_before_kill']:.0f} ms before the kill"
        )


if __name__ == "__main__":
    main()
