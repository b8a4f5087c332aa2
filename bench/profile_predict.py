"""Where does a ``/predict`` request spend its time? py-spy on the app under wrk load.

``.venv/bin/python -m bench.profile_predict [--family delay]`` trains a champion, starts the
app as the serving bench does (uvicorn, one worker, ``--loop asyncio``, logging and rollout
on, core 0), loads ``/predict`` with one row a request from core 1 (wrk, 64 connections) and,
meanwhile, samples the server with ``py-spy record --nonblocking`` (also on core 1, so the
sampler does not take the server's core). It prints the samples' shares: per thread, per
package of the frame running (self time), and the frames most often on the stack (inclusive).
The collapsed stacks are kept (``--out``) for a flame graph (``flamegraph.pl`` or speedscope).

py-spy is a tool, not a dependency: ``uv pip install --python .venv/bin/python py-spy``.
"""

from __future__ import annotations

import argparse
import atexit
import collections
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

from bench import data, serving
from bench.env import BenchEnv

ROOT = Path(__file__).resolve().parent.parent
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def package(path: str) -> str:
    """Who owns a frame's file. py-spy shortens paths: ``fastapi/routing.py`` for an installed
    distribution, ``api/metrics.py`` for the project, ``json/encoder.py`` or ``threading.py``
    for the standard library: the first component names the owner."""
    if "site-packages/" in path:
        path = path.split("site-packages/", 1)[1]
    path = path.removeprefix(str(ROOT) + "/")
    return path.split("/", 1)[0].removesuffix(".py") if path else "?"


# The layers a request crosses, innermost first: a sample belongs to the innermost layer on
# its stack (a socket write made by uvicorn on behalf of a route counts for uvicorn; numpy
# called by the predictor counts for ia-continu).
LAYERS = (
    ("ia-continu (api/, ia_continu/ and what they call)", {"api", "ia_continu"}),
    ("FastAPI / Starlette / pydantic", {"fastapi", "starlette", "pydantic", "pydantic_core"}),
    ("uvicorn (HTTP protocol)", {"uvicorn", "httptools", "h11"}),
)


def layer(thread: str, packages: list[str]) -> str:
    if "MainThread" not in thread:
        return "thread " + re.sub(r"^thread \(\d+\): ", "", thread)
    for owner in reversed(packages):
        for name, owners in LAYERS:
            if owner in owners:
                return name
    return "event loop (asyncio) and the rest"


def summarize(collapsed: str, *, top: int = 25) -> str:
    """Shares of the samples in py-spy's raw (collapsed) output, recorded with ``--threads``."""
    threads: collections.Counter[str] = collections.Counter()
    self_pkg: collections.Counter[str] = collections.Counter()
    self_frame: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    layers: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        thread, *frames = stack.split(";")
        total += count
        threads[thread] += count
        labels = []
        for frame in frames:
            match = _FRAME.match(frame)
            func, file = (match["func"], match["file"]) if match else (frame, "")
            labels.append((f"{func} [{file}]", package(file)))
        layers[layer(thread, [p for _, p in labels])] += count
        if labels:
            self_frame[labels[-1][0]] += count
            self_pkg[labels[-1][1]] += count
        # --nonblocking reads can tear a stack's outer end, never its inner end: the project's
        # own frames (the innermost ones that matter for the request path) are kept.
        for label in {label for label, p in labels if p in ("api", "ia_continu")}:
            inclusive[label] += count

    def table(title: str, counter: collections.Counter[str], n: int) -> list[str]:
        rows = [f"\n{title}"]
        rows += [f"  {c / total:6.1%}  {name}" for name, c in counter.most_common(n)]
        return rows

    out = [f"{total} samples (non-idle)"]
    out += table("per thread", threads, 10)
    out += table("by layer (innermost layer on the stack)", layers, 10)
    out += table("self time, by package of the running frame", self_pkg, top)
    out += table("self time, by frame", self_frame, top)
    out += table("project frames, inclusive (on the stack)", inclusive, top)
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_predict", description=__doc__)
    parser.add_argument("--seconds", type=int, default=20, help="seconds of sampling")
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument("--out", default="/tmp/ia-continu-predict.collapsed")
    parser.add_argument("--family", default="classification", choices=["classification", "delay"])
    args = parser.parse_args(argv)
    spy = shutil.which("py-spy", path=str(ROOT / ".venv/bin")) or shutil.which("py-spy")
    if not spy or not shutil.which("wrk"):
        print("needs py-spy (uv pip install --python .venv/bin/python py-spy) and wrk")
        return 1

    env = BenchEnv.create()

    def cleanup() -> None:
        serving.stop_all()
        env.cleanup()

    atexit.register(cleanup)
    settings = env.settings("profile", args.family)
    engine = data.prepare(settings)
    data.timed_retrain(settings, engine)
    logs = env.root / "logs"
    logs.mkdir(exist_ok=True)
    app = serving.start_app(
        env.server_env(settings), loop="asyncio", log_dir=logs, name="app-profile"
    )
    body = {"features": data.one_row(args.family)}
    url = app.url + "/predict"
    serving.wrk(url, body, seconds=3)  # warm-up
    loaded: dict[str, dict] = {}
    load = threading.Thread(
        target=lambda: loaded.update(run=serving.wrk(url, body, seconds=args.seconds + 4))
    )
    load.start()
    cmd = [
        *serving.taskset(serving.LOAD_CORE),
        spy,
        "record",
        "--pid",
        str(app.proc.pid),
        "--duration",
        str(args.seconds),
        "--rate",
        str(args.rate),
        "--threads",
        "--nonblocking",
        "--format",
        "raw",
        "--output",
        args.out,
    ]
    subprocess.run(cmd, check=True, capture_output=True, timeout=args.seconds + 60)
    load.join()
    run = loaded["run"]
    print(
        f"wrk during the sampling: {run['rps']:,.0f} req/s, p99 {run['p99_ms']:.1f} ms, "
        f"{run['non_2xx']} non-2xx; collapsed stacks in {args.out}"
    )
    print(summarize(Path(args.out).read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
