"""Serving benchmarks: start a server pinned to one core, load it from the other with wrk.

wrk (Debian package) is the load generator: one C process drives 64 connections from one
core with little overhead of its own, which a Python client cannot do at these rates (an
httpx client tops out near the server's own throughput and would measure itself). Without
wrk the serving figures are skipped, saying why.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
SERVER_CORE, LOAD_CORE = "0", "1"
_live: list[subprocess.Popen] = []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def taskset(core: str) -> list[str]:
    return ["taskset", "-c", core] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 else []


@dataclass
class Server:
    name: str
    proc: subprocess.Popen
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss_mb(self) -> float:
        """Resident memory of the server and its children (mlflow serve forks workers)."""
        total = 0
        for pid in [self.proc.pid, *_children(self.proc.pid)]:
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except OSError:
                continue
        return total / 1024

    def stop(self) -> None:
        stop_process(self.proc)


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return out
    for kid in map(int, kids):
        out.append(kid)
        out.extend(_children(kid))
    return out


def stop_process(proc: subprocess.Popen, timeout: float = 15.0) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)  # its own group: the workers go too
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    if proc in _live:
        _live.remove(proc)


def stop_all() -> None:
    for proc in list(_live):
        stop_process(proc, timeout=5)


def _start(
    name: str, cmd: list[str], env: dict[str, str], ready_path: str, log_dir: Path, timeout: float
) -> Server:
    port = free_port()
    cmd = [c.replace("{port}", str(port)) for c in cmd]
    log_path = log_dir / f"{name}.log"
    fh = open(log_path, "w")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        taskset(SERVER_CORE) + cmd,
        env=env,
        cwd=ROOT,
        stdout=fh,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    _live.append(proc)
    server = Server(name, proc, port, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"{name} exited ({proc.returncode}); see {log_path}:\n"
                + log_path.read_text()[-2000:]
            )
        try:
            if httpx.get(server.url + ready_path, timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    server.stop()
    raise RuntimeError(f"{name} not ready after {timeout:.0f} s; see {log_path}")


def _app_command(target: str, factory: bool, loop: str) -> list[str]:
    return [
        str(ROOT / ".venv/bin/uvicorn"),
        target,
        *(["--factory"] if factory else []),
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--workers",
        "1",
        "--loop",
        loop,
        "--no-access-log",
        "--log-level",
        "warning",
    ]


def start_app(
    env: dict[str, str],
    *,
    loop: str,
    log_dir: Path,
    name: str,
    target: str = "api.main:app",
    factory: bool = False,
) -> Server:
    """uvicorn on ``target`` (``factory``: a callable building the app, for bench variants)."""
    return _start(name, _app_command(target, factory, loop), env, "/health", log_dir, timeout=90)


def first_answer(
    env: dict[str, str], body: dict, *, log_dir: Path, name: str, timeout: float = 90
) -> dict:
    """Seconds from spawning the app (as ``start_app`` does, core 0) to its first 200 of
    ``POST /predict`` with ``body``, polled every 10 ms; and its resident memory then.

    Everything a start pays is in: the interpreter, imports, the migration check, loading
    the champion from the registry. The app is stopped afterwards."""
    port = free_port()
    cmd = [c.replace("{port}", str(port)) for c in _app_command("api.main:app", False, "asyncio")]
    log_path = log_dir / f"{name}.log"
    content = json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    url = f"http://127.0.0.1:{port}/predict"
    with open(log_path, "w") as fh, httpx.Client(timeout=5) as client:
        started = time.perf_counter()
        proc = subprocess.Popen(
            taskset(SERVER_CORE) + cmd,
            env=env,
            cwd=ROOT,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _live.append(proc)
        server = Server(name, proc, port, log_path)
        try:
            while time.perf_counter() - started < timeout:
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited ({proc.returncode}); see {log_path}")
                try:
                    response = client.post(url, content=content, headers=headers)
                except httpx.HTTPError:
                    time.sleep(0.01)
                    continue
                if response.status_code == 200:
                    seconds = time.perf_counter() - started
                    return {
                        "seconds": seconds,
                        "served_by": response.json().get("served_by"),
                        "rss_mb": server.rss_mb(),
                    }
                time.sleep(0.01)  # e.g. 503 while the app finishes starting
            raise RuntimeError(f"{name}: no 200 from /predict within {timeout:.0f} s")
        finally:
            server.stop()


def start_mlflow(env: dict[str, str], model_uri: str, *, log_dir: Path, name: str) -> Server:
    cmd = [
        str(ROOT / ".venv/bin/mlflow"),
        "models",
        "serve",
        "-m",
        model_uri,
        "--env-manager",
        "local",
        "-h",
        "127.0.0.1",
        "-p",
        "{port}",
        "-w",
        "1",
    ]
    return _start(name, cmd, env, "/ping", log_dir, timeout=120)


# --- load --------------------------------------------------------------------------------
_LUA = """wrk.method = "POST"
wrk.body = [==[{body}]==]
wrk.headers["Content-Type"] = "application/json"
"""

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * _UNITS[unit]


def wrk(url: str, body: dict, *, seconds: int, connections: int = 64) -> dict:
    """One wrk run; returns requests/s, p50/p99 (ms), errors and non-2xx counts."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(_LUA.format(body=json.dumps(body)))
        script = fh.name
    try:
        options = ["-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "--latency"]
        cmd = [*taskset(LOAD_CORE), "wrk", *options, "-s", script, url]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60).stdout
    finally:
        os.unlink(script)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_err = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    errors = sum(map(int, socket_err.groups())) if socket_err else 0
    return {
        "rps": rps,
        "p50_ms": _ms(p50.group(1)) if p50 else None,
        "p99_ms": _ms(p99.group(1)) if p99 else None,
        "requests": total,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": errors,
        "seconds": seconds,
    }


def load(url: str, body: dict, *, warmup: int, seconds: int) -> dict:
    wrk(url, body, seconds=warmup)
    return wrk(url, body, seconds=seconds)


def batch_rows_per_s(url: str, body: dict, rows: int, *, repeats: int = 5) -> dict:
    """Median wall time of one request scoring ``rows`` rows (after one warm-up call).

    The body is encoded once, before the clock starts: the client's own JSON encoding
    (~15 ms for 10,000 rows) is no part of either server's time."""
    times = []
    content = json.dumps(body).encode()
    with httpx.Client(timeout=60) as client:
        for i in range(repeats + 1):
            started = time.perf_counter()
            response = client.post(
                url, content=content, headers={"Content-Type": "application/json"}
            )
            elapsed = time.perf_counter() - started
            if response.status_code != 200:
                raise RuntimeError(f"{url}: {response.status_code} {response.text[:300]}")
            if i:
                times.append(elapsed)
    median = statistics.median(times)
    return {"rows": rows, "median_s": median, "rows_per_s": rows / median, "repeats": repeats}


def interleaved(
    targets: dict[str, tuple[str, dict]], *, warmup: int, rounds: int, seconds: int
) -> dict[str, dict]:
    """Load each target in turn, ``rounds`` times: every server sees the same moments of a
    noisy machine, so their ratios mean more than back-to-back runs. Per target: the median
    round (by requests/s) and every round."""
    for url, body in targets.values():
        wrk(url, body, seconds=warmup)
    done: dict[str, list[dict]] = {name: [] for name in targets}
    for _ in range(rounds):
        for name, (url, body) in targets.items():
            done[name].append(wrk(url, body, seconds=seconds))
    out = {}
    for name, runs in done.items():
        ranked = sorted(runs, key=lambda r: r["rps"])
        median = dict(ranked[len(ranked) // 2])
        median["rounds"] = [
            {k: r[k] for k in ("rps", "p50_ms", "p99_ms", "non_2xx", "socket_errors")} for r in runs
        ]
        median["requests"] = sum(r["requests"] for r in runs)
        median["non_2xx"] = sum(r["non_2xx"] for r in runs)
        median["socket_errors"] = sum(r["socket_errors"] for r in runs)
        out[name] = median
    return out
