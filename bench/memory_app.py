"""Bench-only ASGI factory: the real app plus a probe of where its memory sits.

``uvicorn bench.memory_app:create --factory`` serves ``api.main.create_app()`` unchanged and
adds ``GET /bench/memory``, which answers, from inside the process:

- ``rss``: ``/proc/self/status`` (VmRSS, RssAnon, RssFile, VmHWM), in MB;
- ``malloc``: glibc's ``mallinfo2`` (``arena``: bytes the main and thread arenas hold,
  ``in_use``: of which allocated, ``free``: of which free but kept, ``mmapped``: large blocks
  mapped on their own), in MB: what the C allocator holds for numpy arrays, bytes objects,
  the big lists and dicts' item arrays;
- ``pymalloc``: CPython's small-object allocator (``sys._debugmallocstats``): its arenas
  (1 MiB each, mapped outside glibc's heap) and the bytes of live blocks in them;
- ``python``: ``sys.getallocatedblocks()`` and the number of objects the cyclic GC tracks
  (those created after the app's ``gc.freeze()``: what requests left behind);
- ``writer``: the prediction log writer's pending rows, queued rows, chunks and rows written.

``?collect=1`` runs ``gc.collect()`` first; ``?trim=1`` calls glibc's ``malloc_trim(0)``
first (a diagnostic: how much of the resident memory is freed memory the allocator kept).
Nothing of this is in the product: ``bench/memory_growth.py`` reads it. With
``IA_CONTINU_BENCH_WRITER`` set, the log writer is patched back to an earlier behaviour
(``_writer_as_before``), for a before/after in one run.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import re
import sys
import tempfile
import threading
from typing import Any

from fastapi import FastAPI, Request

from api.main import create_app

_MB = 1024 * 1024


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _libc() -> Any:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    libc = ctypes.CDLL(name)
    if not hasattr(libc, "mallinfo2"):
        return None
    libc.mallinfo2.restype = _Mallinfo2
    return libc


_LIBC = _libc()


def rss() -> dict[str, float]:
    out: dict[str, float] = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                out[key] = int(value.split()[0]) / 1024
    return out


def malloc() -> dict[str, float] | None:
    if _LIBC is None:
        return None
    info = _LIBC.mallinfo2()
    return {
        "arena": info.arena / _MB,
        "in_use": info.uordblks / _MB,
        "free": info.fordblks / _MB,
        "mmapped": info.hblkhd / _MB,
    }


def pymalloc() -> dict[str, float]:
    """CPython's own arenas, read from ``sys._debugmallocstats`` (it writes to fd 2)."""
    with tempfile.TemporaryFile("w+") as tmp:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            os.dup2(tmp.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        text = tmp.read()

    def figure(label: str) -> int:
        found = re.search(rf"^# {label}\s+=\s+([\d,]+)", text, re.M)
        return int(found.group(1).replace(",", "")) if found else 0

    return {
        "arenas": figure("arenas allocated current"),
        "arenas_mb": figure("arenas allocated current") * (1 << 20) / _MB,
        "live_mb": figure("bytes in allocated blocks") / _MB,
        "free_blocks_mb": figure("bytes in available blocks") / _MB,
    }


def probe(app: FastAPI, *, collect: bool = False, trim: bool = False) -> dict[str, Any]:
    if collect:
        gc.collect()
    if trim and _LIBC is not None:
        _LIBC.malloc_trim(0)
    writer = getattr(getattr(app.state, "runtime", None), "writer", None)
    return {
        "rss": rss(),
        "malloc": malloc(),
        "pymalloc": pymalloc(),
        "python": {
            "allocated_blocks": sys.getallocatedblocks(),
            "gc_tracked": len(gc.get_objects()),
            "threads": threading.active_count(),
        },
        "writer": None
        if writer is None
        else {
            "pending": writer.pending,
            "queue": len(writer._queue),
            "chunks": len(writer._chunks),
            "written": writer.written,
        },
    }


def _writer_as_before(changes: str) -> None:
    """``IA_CONTINU_BENCH_WRITER``: put back, in this process, what the log writer did
    before its memory fixes, to measure them in the same run: ``exact`` (one SQLite
    statement of exactly the batch's size, up to 500 rows) and/or ``eager`` (every queued
    chunk's rows built at once)."""
    from ia_continu.log import writer

    for change in filter(None, changes.split(",")):
        if change == "exact":

            def exact(n: int, full: int = 500) -> list[int]:
                return [full] * (n // full) + ([n % full] if n % full else [])

            writer.sqlite_parts = exact
        elif change == "eager":

            def eager(
                self: writer.PredictionLogWriter,
                until: int | None = None,
                expand: Any = writer.PredictionLogWriter._expand_chunks,
            ) -> None:
                expand(self)

            writer.PredictionLogWriter._expand_chunks = eager  # type: ignore[method-assign]
        else:
            raise ValueError(f"IA_CONTINU_BENCH_WRITER: unknown change {change!r}")


def create() -> FastAPI:
    _writer_as_before(os.environ.get("IA_CONTINU_BENCH_WRITER", ""))
    app = create_app()

    @app.get("/bench/memory", include_in_schema=False)
    async def memory(request: Request, collect: int = 0, trim: int = 0) -> dict[str, Any]:
        return probe(request.app, collect=bool(collect), trim=bool(trim))

    return app
