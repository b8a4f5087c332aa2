"""The benchmark suite: ``.venv/bin/python -m bench.run`` prints every figure next to
its target, with ratios against baselines measured in the same run, and writes a JSON copy to
``bench/results/``.

These machines are noisy (runs move 25-30 %): read the ratios, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import signal
import statistics
import sys
import time

from bench import data, declared_serving, floors, serving
from bench.env import BenchEnv
from bench.report import RESULTS_DIR, Report, machine, write_results


# --- 1, 2, 5: serving ---------------------------------------------------------------------
def bench_serving(env: BenchEnv, family: str, report: Report, args: argparse.Namespace) -> None:
    from ia_continu.serve import flag
    from ia_continu.store.engine import session_scope

    g = f"serve/{family}"
    print(f"\n== {g}: training the champion", flush=True)
    settings = env.settings(f"serve_{family}", family)
    engine = data.prepare(settings)
    cold_s, _ = data.timed_retrain(settings, engine)
    warm_s, result = data.timed_retrain(settings, engine)
    report.add(
        f"retrain/{family}",
        "retrain 10,000 rows + MLflow log + register (sqlite)",
        warm_s,
        "s",
        target="< 10 s",
        met=warm_s < 10,
        note=f"first retrain of the process, cold store: {cold_s:.2f} s",
    )
    version = result.champion_version
    model_uri = f"models:/{settings.registered_model_name}/{version}"
    # The same app logging to PostgreSQL (the docker-compose and Kubernetes deployments'
    # database), with its own champion trained the same way in its own database.
    pg_settings = None
    pg_url = None if args.skip_pg_log else env.pg_url(f"serve_{family}")
    if pg_url is not None:
        pg_settings = env.settings(f"serve_{family}_pg", family, database_url=pg_url)
        data.timed_retrain(pg_settings, data.prepare(pg_settings))
    row = data.one_row(family)
    batch = data.rows(family, 10_000)
    logs = env.root / "logs"
    logs.mkdir(exist_ok=True)
    runs: dict[str, dict] = {}
    if not shutil.which("wrk"):
        report.add(
            g,
            "serving figures",
            None,
            "",
            note="skipped: wrk not installed (apt-get install wrk, or run scripts/bench.sh)",
        )
        return

    def set_percentage(pct: float) -> None:
        with session_scope(engine) as session:
            flag.update_state(session, settings, percentage=pct)
        time.sleep(settings.rollout_cache_seconds + 1.0)  # every replica's cache refreshed

    predict_body = {"features": row}
    w, s = args.warmup, args.seconds

    # All four servers up at once (each on core 0, idle unless loaded), loaded in turn.
    print(
        f"== {g}: starting app x3 (log on asyncio, log on uvloop, log off) + mlflow serve",
        flush=True,
    )
    servers: dict[str, serving.Server] = {}
    try:
        servers["app_log_asyncio"] = serving.start_app(
            env.server_env(settings), loop="asyncio", log_dir=logs, name=f"app-{family}-asyncio"
        )
        servers["app_log_uvloop"] = serving.start_app(
            env.server_env(settings), loop="uvloop", log_dir=logs, name=f"app-{family}-uvloop"
        )
        servers["app_nolog_asyncio"] = serving.start_app(
            env.server_env(settings, IA_CONTINU_PREDICTION_LOG_ENABLED="false"),
            loop="asyncio",
            log_dir=logs,
            name=f"app-{family}-nolog",
        )
        servers["mlflow_serve"] = serving.start_mlflow(
            env.server_env(settings), model_uri, log_dir=logs, name=f"mlflow-{family}"
        )
        if pg_settings is not None:
            servers["app_log_pg"] = serving.start_app(
                env.server_env(pg_settings), loop="asyncio", log_dir=logs, name=f"app-{family}-pg"
            )
        if not args.skip_floors:
            print(f"== {g}: starting the floors: raw ASGI, FastAPI", flush=True)
            servers.update(
                floors.start_floors(env.server_env(settings), log_dir=logs, suffix=family)
            )
        targets = {
            name: (srv.url + "/invocations", {"inputs": [row]})
            if name == "mlflow_serve"
            else (srv.url + "/predict", predict_body)
            for name, srv in servers.items()
        }
        rounds = 3
        print(
            f"== {g}: /predict, {rounds} interleaved rounds of {max(1, s // rounds)} s each",
            flush=True,
        )
        runs.update(
            serving.interleaved(targets, warmup=w, rounds=rounds, seconds=max(1, s // rounds))
        )
        print(f"== {g}: app, logging on, rollout 50 %, --loop asyncio", flush=True)
        app = servers["app_log_asyncio"]
        set_percentage(50.0)
        runs["app_log_asyncio_rollout50"] = serving.wrk(
            app.url + "/predict", predict_body, seconds=s
        )
        set_percentage(100.0)
        print(f"== {g}: /predict/batch and /invocations, 10,000 rows", flush=True)
        app_batch = serving.batch_rows_per_s(
            app.url + "/predict/batch", {"features": batch}, len(batch)
        )
        nolog_batch = serving.batch_rows_per_s(
            servers["app_nolog_asyncio"].url + "/predict/batch", {"features": batch}, len(batch)
        )
        pg_batch = (
            serving.batch_rows_per_s(
                servers["app_log_pg"].url + "/predict/batch", {"features": batch}, len(batch)
            )
            if "app_log_pg" in servers
            else None
        )
        ml = servers["mlflow_serve"]
        ml_batch = serving.batch_rows_per_s(ml.url + "/invocations", {"inputs": batch}, len(batch))
        app_rss = app.rss_mb()
        ml_rss = ml.rss_mb()
    finally:
        for srv in servers.values():
            srv.stop()
    # Alone on core 0, as a replica starting on a node would be (a fresh process each time).
    print(f"== {g}: spawn to first answer, 3 starts", flush=True)
    starts = [
        serving.first_answer(
            env.server_env(settings), predict_body, log_dir=logs, name=f"start-{family}-{i}"
        )
        for i in range(3)
    ]

    report.runs[family] = {
        "predict": runs,
        "batch": {
            "app": app_batch,
            "app_nolog": nolog_batch,
            "app_log_pg": pg_batch,
            "mlflow": ml_batch,
        },
        "rss_mb": {"app": app_rss, "mlflow_serve": ml_rss},
        "first_answer": starts,
        "champion": model_uri,
    }
    labels = {
        "app_log_asyncio": "app, log on, rollout 100 %, asyncio",
        "app_log_asyncio_rollout50": "app, log on, rollout 50 %, asyncio",
        "app_log_uvloop": "app, log on, rollout 100 %, uvloop",
        "app_nolog_asyncio": "app, log OFF, asyncio (baseline)",
        "mlflow_serve": "mlflow models serve (baseline)",
    }
    if "app_log_pg" in runs:
        labels["app_log_pg"] = "app, log on to PostgreSQL, rollout 100 %, asyncio"
    if not args.skip_floors:
        labels["floor_raw_asgi"] = "floor: raw ASGI, json.loads, constant answer"
        labels["floor_fastapi"] = "floor: FastAPI + pydantic request, constant answer"
    for key, label in labels.items():
        r = runs[key]
        bad = r["non_2xx"] + r["socket_errors"]
        note = f"p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, {r['requests']} req"
        if bad:
            note += f", {r['non_2xx']} non-2xx, {r['socket_errors']} socket errors"
        report.add(g, f"{label}: req/s", r["rps"], "req/s", note=note)
    on, off, ml_run = runs["app_log_asyncio"], runs["app_nolog_asyncio"], runs["mlflow_serve"]
    ratio = on["rps"] / ml_run["rps"]
    report.add(
        g,
        "ratio app (log+rollout) / mlflow serve, req/s",
        ratio,
        "x",
        target=">= 8x",
        met=ratio >= 8,
    )

    def log_ratio(key: str, label: str, note: str = "", issue: str = "") -> None:
        run = runs[key]
        ratio = run["rps"] / off["rps"]
        per_round = ", ".join(
            f"{a['rps'] / b['rps']:.2f}" for a, b in zip(run["rounds"], off["rounds"], strict=True)
        )
        report.add(
            g,
            f"ratio app {label} / log off, req/s",
            ratio,
            "x",
            target=">= 0.90",
            met=ratio >= 0.9,
            note=f"medians; per round {per_round}{note}",
            issue=issue,
        )

    log_ratio("app_log_asyncio", "log on", issue="log overhead: /predict log on / off")
    if "app_log_pg" in runs:
        log_ratio(
            "app_log_pg",
            "log on (PostgreSQL)",
            note="; the database server's own work is not on the app's core",
        )
    elif not args.skip_pg_log:
        report.add(g, "log on to PostgreSQL", None, "", note=f"skipped: {env.pg_error}")
    if not args.skip_floors:
        report_floors(report, f"floors/{family}", runs)
    for key, loop in (
        ("app_log_asyncio", "asyncio"),
        ("app_log_uvloop", "uvloop"),
        ("app_log_asyncio_rollout50", "asyncio, rollout 50 %"),
    ):
        p99 = runs[key]["p99_ms"]
        report.add(
            g,
            f"p99 /predict, log on ({loop})",
            p99,
            "ms",
            target="< 20 ms",
            met=p99 is not None and p99 < 20,
            note="64 connections" + ("; median round" if "rounds" in runs[key] else ""),
            issue="p99 /predict, 64 connections" if key == "app_log_asyncio" else "",
        )
    report.add(
        f"batch/{family}",
        "app /predict/batch, 10,000 rows",
        app_batch["rows_per_s"],
        "rows/s",
        note=f"median {app_batch['median_s'] * 1000:.0f} ms of 5",
    )
    report.add(
        f"batch/{family}",
        "app /predict/batch, log OFF, 10,000 rows (baseline)",
        nolog_batch["rows_per_s"],
        "rows/s",
        note=f"median {nolog_batch['median_s'] * 1000:.0f} ms of 5",
    )
    report.add(
        f"batch/{family}",
        "mlflow serve /invocations, 10,000 rows (baseline)",
        ml_batch["rows_per_s"],
        "rows/s",
        note=f"median {ml_batch['median_s'] * 1000:.0f} ms of 5",
    )
    if pg_batch is not None:
        ratio = pg_batch["rows_per_s"] / ml_batch["rows_per_s"]
        report.add(
            f"batch/{family}",
            "ratio app, log to PostgreSQL / mlflow serve, rows/s",
            ratio,
            "x",
            target=">= 1.5x",
            met=ratio >= 1.5,
            note=f"10,000 rows: app {pg_batch['median_s'] * 1000:.0f} ms (medians of 5)",
        )
    ratio = app_batch["rows_per_s"] / ml_batch["rows_per_s"]
    report.add(
        f"batch/{family}",
        "ratio app / mlflow serve, rows/s",
        ratio,
        "x",
        target=">= 1.5x",
        met=ratio >= 1.5,
        note=f"10,000 rows: app {app_batch['median_s'] * 1000:.0f} ms, "
        f"mlflow {ml_batch['median_s'] * 1000:.0f} ms (medians of 5)",
        issue="/predict/batch rows/s vs mlflow serve",
    )
    report.add(
        f"memory/{family}",
        "API process RSS after the load",
        app_rss,
        "MB",
        target="< 300 MB",
        met=app_rss < 300,
        note=f"log on, after /predict and batch load; mlflow serve: {ml_rss:.0f} MB",
        issue="API RSS after load",
    )
    seconds = [s["seconds"] for s in starts]
    value = statistics.median(seconds)
    report.add(
        f"start/{family}",
        "spawn to first 200 of /predict (champion in the registry)",
        value,
        "s",
        target="< 3 s",
        met=value < 3,
        note=f"median of {len(seconds)}: "
        + ", ".join(f"{x:.2f}" for x in seconds)
        + f"; RSS then {statistics.median(s['rss_mb'] for s in starts):.0f} MB",
        issue="first answer after start",
    )


def report_floors(report: Report, group: str, runs: dict[str, dict]) -> None:
    """/predict one row, logging + rollout + metrics on: ia-continu against the framework's
    floors and MLflow serve, all from the same interleaved rounds."""
    app = runs["app_log_asyncio"]
    for key, label in (
        ("floor_raw_asgi", "raw ASGI"),
        ("floor_fastapi", "FastAPI floor"),
        ("app_log_asyncio", "ia-continu"),
        ("mlflow_serve", "mlflow serve"),
    ):
        r = runs[key]
        report.add(group, f"{label}: req/s", r["rps"], "req/s", note=f"p99 {r['p99_ms']:.1f} ms")
    for key, label, target in (
        ("floor_fastapi", "FastAPI floor", 0.75),
        ("mlflow_serve", "mlflow serve", 5.0),
    ):
        ratio = app["rps"] / runs[key]["rps"]
        per_round = ", ".join(
            f"{a['rps'] / b['rps']:.2f}"
            for a, b in zip(app["rounds"], runs[key]["rounds"], strict=True)
        )
        report.add(
            group,
            f"ratio ia-continu / {label}, req/s",
            ratio,
            "x",
            target=f">= {target:g}x",
            met=ratio >= target,
            note=f"medians; per round {per_round}",
            issue=f"/predict req/s vs {label}",
        )


# --- 3, 4: database-side figures -----------------------------------------------------------
def bench_database(env: BenchEnv, backend: str, report: Report, args: argparse.Namespace) -> None:
    from ia_continu.store.engine import session_scope
    from ia_continu.truth.actuals import record_actuals
    from ia_continu.watch.drift import RecentInputs, run_drift_check
    from ia_continu.watch.quality import summary

    g = f"db/{backend}"
    url = ""
    if backend == "postgresql":
        url = env.pg_url()
        if url is None:
            report.add(g, "database figures", None, "", note=f"skipped: {env.pg_error}")
            return
    print(f"\n== {g}: dataset, champion, {args.rows:,} logged predictions", flush=True)
    settings = env.settings(f"db_{backend}", "classification", database_url=url)
    engine = data.prepare(settings)
    data.timed_retrain(settings, engine)  # the champion the drift check compares against
    warm_s, _ = data.timed_retrain(settings, engine)
    report.add(
        g,
        "retrain 10,000 rows + MLflow log + register",
        warm_s,
        "s",
        target="< 10 s",
        met=warm_s < 10,
    )
    started = time.perf_counter()
    unlabeled = data.insert_predictions(engine, "classification", args.rows)
    report.add(
        g,
        f"bulk insert of {args.rows:,} predictions (setup)",
        time.perf_counter() - started,
        "s",
        note=f"{len(unlabeled):,} without actual",
    )

    times = []
    for _ in range(3):
        started = time.perf_counter()
        with session_scope(engine) as session:
            out = summary(session, settings)
        times.append(time.perf_counter() - started)
    value = statistics.median(times)
    report.add(
        g,
        f"monitoring summary() over {out.total_predictions:,} predictions",
        value,
        "s",
        target="< 1 s",
        met=value < 1,
        note="median of 3; runs " + ", ".join(f"{t:.2f}" for t in times),
    )

    n = min(100_000, len(unlabeled))
    items = [{"request_id": rid, "actual": 1.0} for rid in unlabeled[-n:]]
    started = time.perf_counter()
    with session_scope(engine) as session:
        result = record_actuals(session, settings, items)
    value = time.perf_counter() - started
    report.add(
        g,
        f"backfill {n:,} actuals (record_actuals + commit)",
        value,
        "s",
        target="< 5 s",
        met=value < 5 and result.updated == n,
        note=f"{result.updated:,} rows updated",
    )

    started = time.perf_counter()
    import evidently  # noqa: F401 - paid once per flow process; timed apart from the check

    import_s = time.perf_counter() - started
    started = time.perf_counter()
    drift = run_drift_check(settings, engine, RecentInputs(hours=24, max_rows=100_000))
    value = time.perf_counter() - started
    report.add(
        g,
        f"drift check on {drift.current_rows:,} current rows",
        value,
        "s",
        target="< 3 s",
        met=value < 3 and drift.status == "checked",
        note=f"{drift.status}; evidently import {import_s:.1f} s not included; "
        "HTML report + MLflow run included",
    )
    engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--families", default="classification,delay")
    parser.add_argument("--seconds", type=int, default=12, help="measured seconds per load run")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up seconds per server")
    parser.add_argument("--rows", type=int, default=1_000_000, help="logged predictions")
    parser.add_argument("--skip-serving", action="store_true")
    parser.add_argument(
        "--skip-floors",
        action="store_true",
        help="leave out the raw ASGI and FastAPI floor servers (bench/floors.py)",
    )
    parser.add_argument(
        "--skip-declared",
        action="store_true",
        help="leave out the declared RandomForest against mlflow serve (bench/declared_serving.py)",
    )
    parser.add_argument(
        "--skip-pg-log",
        action="store_true",
        help="leave out the app logging to PostgreSQL in the serving rounds",
    )
    parser.add_argument("--skip-database", action="store_true")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (logs)")
    args = parser.parse_args(argv)
    if not 1 <= args.seconds <= 120 or not 0 <= args.warmup <= 60:
        parser.error("--seconds must be 1..120 and --warmup 0..60")

    env = BenchEnv.create(keep=args.keep)

    def cleanup() -> None:
        serving.stop_all()
        env.cleanup()

    atexit.register(cleanup)
    # SIGTERM behaves like Ctrl-C: unwind, stop the servers, drop the databases.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))

    report = Report()
    info = machine()
    print(
        f"ia-continu benchmarks on {info['nproc']} cores, {info['cpu']}; "
        f"load generator: {info['load_generator']}; work folder {env.root}"
    )
    if (info["nproc"] or 1) < 2:
        print("warning: one core only: server and load generator share it")
    started = time.perf_counter()
    failed: list[str] = []
    try:
        if not args.skip_serving:
            for family in args.families.split(","):
                try:
                    bench_serving(env, family, report, args)
                except Exception as exc:  # one broken part must not hide the others' figures
                    failed.append(f"serve/{family}: {type(exc).__name__}: {exc}")
                    report.add(f"serve/{family}", "FAILED", None, "", note=str(exc)[:200])
                finally:
                    serving.stop_all()
        if not args.skip_serving and not args.skip_declared and not shutil.which("wrk"):
            report.add(
                "declared/bike_traffic",
                "serving figures",
                None,
                "",
                note="skipped: wrk not installed (apt-get install wrk, or run scripts/bench.sh)",
            )
        elif not args.skip_serving and not args.skip_declared:
            try:
                print("\n== declared/bike_traffic: the app against mlflow serve", flush=True)
                report.runs["declared"] = declared_serving.run(
                    env,
                    report,
                    seconds=max(1, args.seconds // 3),
                    warmup=args.warmup,
                    rounds=3,
                    samples=10_000,
                )
            except Exception as exc:
                failed.append(f"declared: {type(exc).__name__}: {exc}")
                report.add("declared/bike_traffic", "FAILED", None, "", note=str(exc)[:200])
            finally:
                serving.stop_all()
        if not args.skip_database:
            for backend in args.backends.split(","):
                try:
                    bench_database(env, backend, report, args)
                except Exception as exc:
                    failed.append(f"db/{backend}: {type(exc).__name__}: {exc}")
                    report.add(f"db/{backend}", "FAILED", None, "", note=str(exc)[:200])
    except KeyboardInterrupt:
        print("\ninterrupted: stopping servers and cleaning up")
        return 130
    finally:
        cleanup()

    total = time.perf_counter() - started
    info["loadavg_at_end"] = os.getloadavg()
    print("\n" + report.table())
    judged = [f for f in report.figures if f["met"] is not None]
    missed = [f for f in judged if not f["met"]]
    print(f"\n{len(judged) - len(missed)}/{len(judged)} targets met; total {total:.0f} s")
    print(
        f"\nServing targets (load average {info['loadavg_at_start'][0]:.1f} at start, "
        f"{info['loadavg_at_end'][0]:.1f} at end; ratios from the same run):\n"
        + report.targets_table()
    )
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    write_results(
        "bench",
        {
            "machine": info,
            "args": vars(args),
            "total_s": total,
            "figures": report.figures,
            "runs": report.runs,
            "failed": failed,
        },
    )
    for line in failed:
        print("FAILED", line, file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
