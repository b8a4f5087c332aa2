"""Does the hand-written ``HttpMetricsMiddleware`` earn its keep against the library option?

``.venv/bin/python -m bench.middleware`` serves the real app's ``/predict`` (classification
champion, logging and rollout on, rate limit off) in three variants built by
``bench/middleware_app.py``: (a) as shipped, (b) without HTTP metrics middleware, (c) with
``prometheus-fastapi-instrumentator`` recording the same series instead (install it in the venv
first; it is not a dependency of the project). Each server runs on core 0, wrk on core 1 with
64 connections; after a warm-up the variants are loaded in turn, twice (a b c a b c), so each
sees the same moments of a noisy machine. Prints requests/s and p99 per variant and pass, and
the ratios (a)/(b) and (c)/(b); writes a JSON copy to ``bench/results/``.
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import statistics
import sys

import httpx

from bench import data, serving
from bench.env import BenchEnv
from bench.run import Report, machine, write_results

VARIANTS = {
    "handwritten": "(a) as shipped: HttpMetricsMiddleware",
    "none": "(b) no HTTP metrics middleware (floor)",
    "instrumentator": "(c) prometheus-fastapi-instrumentator",
}


def _check_metrics(url: str, variant: str) -> str:
    """What /metrics says about /predict: proves each variant records what it should."""
    text = httpx.get(url + "/metrics", timeout=10).text
    lines = [
        line
        for line in text.splitlines()
        if line.startswith("http_requests_total{") and '"/predict"' in line
    ]
    expected = variant != "none"
    if bool(lines) != expected:
        raise RuntimeError(f"{variant}: /predict counted on /metrics: {lines or 'no'}")
    return lines[0] if lines else "no http_requests_total series (as expected)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.middleware", description=__doc__)
    parser.add_argument("--seconds", type=int, default=10, help="seconds per variant and pass")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up seconds per variant")
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (logs)")
    args = parser.parse_args(argv)
    if not shutil.which("wrk"):
        print("skipped: wrk not installed (apt-get install wrk, or run scripts/bench.sh)")
        return 1
    try:
        import prometheus_fastapi_instrumentator as lib
    except ImportError:
        print("prometheus-fastapi-instrumentator is not installed: uv pip install it in .venv")
        return 1

    env = BenchEnv.create(keep=args.keep)

    def cleanup() -> None:
        serving.stop_all()
        env.cleanup()

    atexit.register(cleanup)
    info = machine()
    version = getattr(lib, "__version__", "?")
    print(
        f"HTTP metrics middleware bench on {info['nproc']} cores, {info['cpu']}; "
        f"{info['load_generator']}; instrumentator {version}; load {info['loadavg_at_start']}"
    )
    settings = env.settings("middleware", "classification")
    engine = data.prepare(settings)
    data.timed_retrain(settings, engine)
    engine.dispose()
    body = {"features": data.one_row("classification")}
    logs = env.root / "logs"
    logs.mkdir(exist_ok=True)
    servers: dict[str, serving.Server] = {}
    runs: dict[str, list[dict]] = {name: [] for name in VARIANTS}
    checks: dict[str, str] = {}
    try:
        for name in VARIANTS:
            servers[name] = serving.start_app(
                env.server_env(settings, IA_CONTINU_BENCH_HTTP_METRICS=name),
                loop="asyncio",
                log_dir=logs,
                name=f"app-{name}",
                target="bench.middleware_app:create",
                factory=True,
            )
        for srv in servers.values():
            serving.wrk(srv.url + "/predict", body, seconds=args.warmup)
        for n in range(args.passes):
            print(f"== pass {n + 1}/{args.passes}: {args.seconds} s per variant", flush=True)
            for name, srv in servers.items():
                runs[name].append(serving.wrk(srv.url + "/predict", body, seconds=args.seconds))
        for name, srv in servers.items():
            checks[name] = _check_metrics(srv.url, name)
    finally:
        cleanup()

    info["loadavg_at_end"] = os.getloadavg()
    report = Report()
    for name, label in VARIANTS.items():
        for n, r in enumerate(runs[name], 1):
            bad = r["non_2xx"] + r["socket_errors"]
            note = f"pass {n}, p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms"
            if bad:
                note += f", {r['non_2xx']} non-2xx, {r['socket_errors']} socket errors"
            report.add("middleware", f"{label}: req/s", r["rps"], "req/s", note=note)
    mean = {name: statistics.mean(r["rps"] for r in runs[name]) for name in VARIANTS}
    p99 = {name: statistics.mean(r["p99_ms"] for r in runs[name]) for name in VARIANTS}
    for name, label in VARIANTS.items():
        report.add("middleware", f"{label}: mean req/s", mean[name], "req/s")
        report.add("middleware", f"{label}: mean p99", p99[name], "ms")
    for name, short in (("handwritten", "(a)/(b)"), ("instrumentator", "(c)/(b)")):
        per_pass = ", ".join(
            f"{r['rps'] / b['rps']:.3f}" for r, b in zip(runs[name], runs["none"], strict=True)
        )
        report.add(
            "middleware",
            f"ratio {short}, req/s",
            mean[name] / mean["none"],
            "x",
            note=f"per pass {per_pass}",
        )
        report.add("middleware", f"ratio {short}, p99", p99[name] / p99["none"], "x")
    report.add(
        "middleware",
        "ratio (a)/(c), req/s",
        mean["handwritten"] / mean["instrumentator"],
        "x",
    )
    print("\n" + report.table())
    for name, line in checks.items():
        print(f"/metrics, {name}: {line}")
    write_results(
        "middleware",
        {
            "machine": info,
            "args": vars(args),
            "instrumentator": version,
            "figures": report.figures,
            "runs": runs,
            "metrics_check": checks,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
