"""CPU time per one-row ``/predict``: the app (logging on and off) against the floors.

``.venv/bin/python -m bench.predict_cpu`` starts, as the serving bench does (uvicorn, one
worker, ``--loop asyncio``, core 0, wrk on core 1, 64 connections, one row a request), the app
with logging and rollout on, the same with logging off, and the two floors of
``bench/floors.py``, then loads each in interleaved rounds and divides the CPU time the server
process used during a round (user + system, from ``/proc/<pid>/stat``, every thread included)
by the requests it answered.

Why a second measure next to requests/s: on a shared machine the throughput of a server pinned
to one core moves with whatever else runs on that core (rounds of the same server differ by
2x under a load average of 5), while the CPU time a request costs moves far less (a few %):
CPU per request says what the code costs, requests/s what the machine gave it. The ratios
printed are those of the bench's targets: floor / app is the app's share of the FastAPI
floor's throughput on a core of its own, off / on the cost of the prediction log.
"""

from __future__ import annotations

import argparse
import atexit
import os
import statistics
import sys
from pathlib import Path

from bench import data, floors, serving
from bench.env import BenchEnv

_TICK = os.sysconf("SC_CLK_TCK")


def _stat_cpu(path: Path) -> float:
    fields = path.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads (``/proc/<pid>/stat``)."""
    return _stat_cpu(Path(f"/proc/{pid}/stat"))


def main_thread_seconds(pid: int) -> float:
    """The same for the process' main thread alone: uvicorn's event loop, which answers the
    requests. The rest of the process' CPU is its other threads' (the log writer, mostly)."""
    return _stat_cpu(Path(f"/proc/{pid}/task/{pid}/stat"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.predict_cpu", description=__doc__)
    parser.add_argument("--family", default="classification")
    parser.add_argument("--seconds", type=int, default=5, help="seconds per round and server")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="LABEL:KEY=VALUE,...",
        help="one more app, logging on, with these settings (e.g. "
        "'big batches:IA_CONTINU_LOG_FLUSH_INTERVAL_MS=200'); repeatable",
    )
    args = parser.parse_args(argv)
    env = BenchEnv.create()

    def cleanup() -> None:
        serving.stop_all()
        env.cleanup()

    atexit.register(cleanup)
    settings = env.settings("predict_cpu", args.family)
    engine = data.prepare(settings)
    data.timed_retrain(settings, engine)
    logs = env.root / "logs"
    logs.mkdir(exist_ok=True)
    server_env = env.server_env(settings)
    started = floors.start_floors(server_env, log_dir=logs, suffix="cpu")
    servers = {
        "ia-continu, log on": serving.start_app(
            server_env, loop="asyncio", log_dir=logs, name="on"
        ),
        "ia-continu, log off": serving.start_app(
            server_env | {"IA_CONTINU_PREDICTION_LOG_ENABLED": "false"},
            loop="asyncio",
            log_dir=logs,
            name="off",
        ),
        **{
            label: serving.start_app(
                server_env | dict(kv.split("=", 1) for kv in pairs.split(",")),
                loop="asyncio",
                log_dir=logs,
                name=f"variant-{i}",
            )
            for i, (label, _, pairs) in enumerate(v.partition(":") for v in args.variant)
        },
        "FastAPI floor": started["floor_fastapi"],
        "raw ASGI floor": started["floor_raw_asgi"],
    }
    body = {"features": data.one_row(args.family)}
    for server in servers.values():
        serving.wrk(server.url + "/predict", body, seconds=2)  # warm-up
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in servers}
    for _ in range(args.rounds):
        for name, server in servers.items():
            pid = server.proc.pid
            before, main_before = cpu_seconds(pid), main_thread_seconds(pid)
            load = serving.wrk(server.url + "/predict", body, seconds=args.seconds)
            used = cpu_seconds(pid) - before
            main = main_thread_seconds(pid) - main_before
            if load["non_2xx"] or load["socket_errors"] or not load["requests"]:
                print(f"{name}: {load['non_2xx']} non-2xx, {load['socket_errors']} socket errors")
                return 1
            runs[name].append(
                {
                    "cpu_us": used / load["requests"] * 1e6,
                    "main_us": main / load["requests"] * 1e6,
                    "rps": load["rps"],
                    "p99": load["p99_ms"],
                }
            )
    print(f"\n/predict one row, {args.family}, {args.rounds} rounds of {args.seconds} s each")
    median = {}
    for name, rounds in runs.items():
        median[name] = statistics.median(r["cpu_us"] for r in rounds)
        cpu = " / ".join(f"{r['cpu_us']:.0f}" for r in rounds)
        rps = " / ".join(f"{r['rps']:,.0f}" for r in rounds)
        main = statistics.median(r["main_us"] for r in rounds)
        print(
            f"  {name:20s} CPU {median[name]:5.0f} us a request ({cpu}; main thread {main:.0f},"
            f" other threads {median[name] - main:.0f}); req/s {rps}"
        )
    on, off = median["ia-continu, log on"], median["ia-continu, log off"]
    print(f"  FastAPI floor / ia-continu (CPU a request): {median['FastAPI floor'] / on:.2f}")
    print(f"  log off / log on (CPU a request):           {off / on:.2f}")
    print(f"  load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
