"""What an API process keeps in memory after load: ``.venv/bin/python -m bench.memory_growth``.

Trains a champion, starts the app as ``bench.run`` does (uvicorn, one worker, core 0) in
several variants at once, and loads them in turn, phase by phase, as ``bench.run`` loads its
app: one-row ``POST /predict`` with wrk (64 connections, a warm-up then interleaved rounds),
the same at a 50 % rollout, then six ``POST /predict/batch`` calls of 10,000 rows. After each
phase, and after an idle pause once the prediction log has written everything, it reads each
process's memory through the bench-only probe of ``bench/memory_app.py``: resident memory,
glibc's heap (in use / free but kept), CPython's small-object arenas, the objects the cyclic
GC tracks and the log writer's backlog. Last, two diagnostics on the idle process: a
``gc.collect()``, then glibc's ``malloc_trim(0)``: what they give back is garbage waiting
for the GC, and freed memory the allocator kept.

Variants (``--variants``, comma-separated): ``log`` (as shipped), ``nolog``
(``IA_CONTINU_PREDICTION_LOG_ENABLED=false``), ``arena2`` (logging on, ``MALLOC_ARENA_MAX=2``),
and the log writer as it was before its memory fixes: ``before`` (both), ``exact`` (one SQLite
statement of each batch's exact size) and ``eager`` (all queued answers built into rows at once).
The growth of each is read against its own start, in the same run. A few minutes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
import threading
import time
from typing import Any

import httpx

from bench import data, serving
from bench.env import BenchEnv
from bench.report import machine, write_results

VARIANTS: dict[str, dict[str, str]] = {
    "log": {},
    "nolog": {"IA_CONTINU_PREDICTION_LOG_ENABLED": "false"},
    "arena2": {"MALLOC_ARENA_MAX": "2"},
    # The log writer as it was before its memory fixes (bench/memory_app.py), and each alone.
    "before": {"IA_CONTINU_BENCH_WRITER": "exact,eager"},
    "exact": {"IA_CONTINU_BENCH_WRITER": "exact"},
    "eager": {"IA_CONTINU_BENCH_WRITER": "eager"},
}


def read(server: serving.Server, **flags: int) -> dict[str, Any]:
    query = "&".join(f"{k}={v}" for k, v in flags.items())
    response = httpx.get(f"{server.url}/bench/memory?{query}", timeout=30)
    response.raise_for_status()
    return response.json()


class Sampler:
    """Peak RSS (from /proc, outside) and peak log backlog (the probe) while a load runs."""

    def __init__(self, server: serving.Server) -> None:
        self.server = server
        self.peak_rss = 0.0
        self.peak_pending = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self.peak_rss = max(self.peak_rss, self.server.rss_mb())
            try:
                writer = read(self.server)["writer"]
            except httpx.HTTPError:
                continue
            if writer is not None:
                self.peak_pending = max(self.peak_pending, writer["pending"])


def drained(server: serving.Server, timeout: float = 120) -> float:
    """Seconds until the log writer has nothing pending."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        writer = read(server)["writer"]
        if writer is None or writer["pending"] == 0:
            return time.monotonic() - started
        time.sleep(0.2)
    raise RuntimeError(f"{server.name}: log writer still busy after {timeout:.0f} s")


def batch_call(client: httpx.Client, server: serving.Server, content: bytes) -> float:
    started = time.perf_counter()
    response = client.post(
        server.url + "/predict/batch", content=content, headers={"Content-Type": "application/json"}
    )
    if response.status_code != 200:
        raise RuntimeError(f"{server.name}: {response.status_code} {response.text[:300]}")
    return time.perf_counter() - started


def summary(snapshot: dict[str, Any]) -> dict[str, float]:
    m, p = snapshot["malloc"] or {}, snapshot["pymalloc"]
    writer = snapshot["writer"] or {}
    return {
        "rss": snapshot["rss"]["VmRSS"],
        "anon": snapshot["rss"]["RssAnon"],
        "heap_in_use": m.get("in_use", 0.0) + m.get("mmapped", 0.0),
        "heap_free": m.get("free", 0.0),
        "pymalloc_arenas": p["arenas_mb"],
        "pymalloc_live": p["live_mb"],
        "gc_tracked": snapshot["python"]["gc_tracked"],
        "pending": writer.get("pending", 0),
    }


COLUMNS = [
    ("rss", "RSS", "{:7.1f}"),
    ("anon", "anon", "{:7.1f}"),
    ("heap_in_use", "heap used", "{:9.1f}"),
    ("heap_free", "heap free", "{:9.1f}"),
    ("pymalloc_arenas", "pyarenas", "{:8.1f}"),
    ("pymalloc_live", "pylive", "{:7.1f}"),
    ("gc_tracked", "gc objs", "{:8.0f}"),
    ("pending", "pending", "{:7.0f}"),
]


def print_variant(name: str, phases: list[tuple[str, dict[str, Any]]]) -> None:
    print(f"\n{name}: MB unless said (heap: glibc, in use incl. mmapped / free but kept)")
    print(
        f"  {'phase':<24}" + " ".join(f"{label:>{len(fmt.format(0))}}" for _, label, fmt in COLUMNS)
    )
    for phase, snap in phases:
        s = summary(snap)
        print(f"  {phase:<24}" + " ".join(fmt.format(s[key]) for key, _, fmt in COLUMNS))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memory_growth", description=__doc__)
    parser.add_argument("--family", default="classification")
    parser.add_argument("--variants", default="log,nolog,arena2")
    parser.add_argument("--seconds", type=int, default=12, help="one-row load, seconds a phase")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--idle", type=float, default=5.0, help="idle seconds before the last read")
    args = parser.parse_args(argv)
    names = args.variants.split(",")
    if unknown := set(names) - VARIANTS.keys():
        parser.error(f"unknown variants {sorted(unknown)}: expected {sorted(VARIANTS)}")
    if not shutil.which("wrk"):
        print("wrk is not installed (apt-get install wrk): nothing measured")
        return 1

    from ia_continu.serve import flag
    from ia_continu.store.engine import session_scope

    env = BenchEnv.create()
    info = machine()
    servers: dict[str, serving.Server] = {}
    phases: dict[str, list[tuple[str, dict[str, Any]]]] = {n: [] for n in names}
    peaks: dict[str, dict[str, dict[str, Any]]] = {n: {} for n in names}
    timings: dict[str, dict[str, Any]] = {n: {"batch_s": []} for n in names}
    try:
        print(f"== training a {args.family} champion", flush=True)
        settings = env.settings("memory", args.family)
        engine = data.prepare(settings)
        data.timed_retrain(settings, engine)
        body = {"features": data.one_row(args.family)}
        batch = json.dumps({"features": data.rows(args.family, 10_000)}).encode()
        logs = env.root / "logs"
        logs.mkdir()

        def set_percentage(pct: float) -> None:
            with session_scope(engine) as session:
                flag.update_state(session, settings, percentage=pct)
            time.sleep(settings.rollout_cache_seconds + 1.0)

        print(f"== starting {', '.join(names)}", flush=True)
        for name in names:
            servers[name] = serving.start_app(
                env.server_env(settings, **VARIANTS[name]),
                loop="asyncio",
                log_dir=logs,
                name=f"memory-{name}",
                target="bench.memory_app:create",
                factory=True,
            )
        for name in names:
            phases[name].append(("start", read(servers[name])))

        def loaded(phase: str, seconds: int, rounds: int) -> None:
            for name in names:
                serving.wrk(servers[name].url + "/predict", body, seconds=args.warmup)
            for _ in range(rounds):
                for name in names:
                    with Sampler(servers[name]) as sampler:
                        run = serving.wrk(servers[name].url + "/predict", body, seconds=seconds)
                    peak = peaks[name].setdefault(phase, {"rss": 0.0, "pending": 0, "rps": []})
                    peak["rss"] = max(peak["rss"], sampler.peak_rss)
                    peak["pending"] = max(peak["pending"], sampler.peak_pending)
                    peak["rps"].append(run["rps"])
            for name in names:
                phases[name].append((phase, read(servers[name])))

        rounds = 3
        print(f"== one-row /predict: {rounds} interleaved rounds", flush=True)
        loaded("one-row load", max(1, args.seconds // rounds), rounds)
        print("== one-row /predict, rollout 50 %", flush=True)
        set_percentage(50.0)
        loaded("rollout 50 % load", args.seconds, 1)
        set_percentage(100.0)
        print("== /predict/batch, 10,000 rows, 6 calls each", flush=True)
        with httpx.Client(timeout=120) as client:
            for i in range(6):
                for name in names:
                    timings[name]["batch_s"].append(batch_call(client, servers[name], batch))
                    phases[name].append((f"batch {i + 1}", read(servers[name])))
        print(f"== idle: log drained, then {args.idle:.0f} s", flush=True)
        # Every process drains at once: each one's peak while its writer catches up.
        samplers = {name: Sampler(servers[name]) for name in names}
        began = time.monotonic()
        with contextlib.ExitStack() as stack:
            for sampler in samplers.values():
                stack.enter_context(sampler)
            for name in names:
                drained(servers[name])
                timings[name]["drain_s"] = time.monotonic() - began
        for name, sampler in samplers.items():
            peaks[name]["log drain"] = {
                "rss": sampler.peak_rss,
                "pending": sampler.peak_pending,
                "rps": [],
            }
        time.sleep(args.idle)
        for name in names:
            phases[name].append(("idle, log drained", read(servers[name])))
            phases[name].append(("+ gc.collect()", read(servers[name], collect=1)))
            phases[name].append(("+ malloc_trim(0)", read(servers[name], trim=1)))
    finally:
        for server in servers.values():
            server.stop()
        env.cleanup()

    print(f"\nload average at start {info['loadavg_at_start'][0]:.1f}")
    for name in names:
        print_variant(f"{name} ({VARIANTS[name] or 'as shipped'})", phases[name])
        for phase, peak in peaks[name].items():
            rps = "/".join(f"{r:.0f}" for r in peak["rps"])
            print(
                f"  during {phase}: peak RSS {peak['rss']:.1f} MB, peak log backlog "
                f"{peak['pending']} rows" + (f", req/s {rps}" if rps else "")
            )
        batch_ms = ", ".join(f"{1000 * s:.0f}" for s in timings[name]["batch_s"])
        drain = timings[name].get("drain_s", 0.0)
        print(f"  batch calls (ms): {batch_ms}; log drained within {drain:.1f} s of the last")
    print("\ngrowth: RSS after the idle pause minus RSS at start (same process)")
    for name in names:
        start = summary(phases[name][0][1])["rss"]
        idle = dict(phases[name])["idle, log drained"]
        trimmed = dict(phases[name])["+ malloc_trim(0)"]
        rss, trim = summary(idle)["rss"], summary(trimmed)["rss"]
        print(
            f"  {name:<8} start {start:6.1f}  idle {rss:6.1f}  growth {rss - start:+6.1f}  "
            f"after trim {trim:6.1f}"
        )
    write_results(
        "memory_growth",
        {"machine": info, "phases": phases, "peaks": peaks, "timings": timings, "args": vars(args)},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
