"""Request ids for the rows a client sent without one."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence

import numpy as np

# The UUID variant digit (10xx in binary: 8, 9, a or b) for any random hex digit.
_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}
# Random bytes drawn ahead, for the ids of one-row calls: os.urandom is a system call, and
# one per /predict showed as 5 % of a request's samples under load (bench/profile_predict.py):
# the call releases the GIL, and taking it back waits for the log writer's thread.
_POOL_IDS = 256
_pool = ""
_next = 32 * _POOL_IDS  # position of the next unused id in _pool: empty at start
_lock = threading.Lock()


def new_ids(count: int) -> list[str]:
    """``count`` time-ordered UUIDs (version 7, as ``new_id``) as 32 hex digits, from one
    ``os.urandom`` call: ``uuid4()`` per row cost 25 ms of a 10,000-row batch.

    The ids of one call share its millisecond and differ in their 74 random bits. Random
    UUID4s here cost the log writer ~5x the CPU of the whole row once the log held 250,000
    rows (26 against 5.2 us a row in SQLite, in-process): each landed on a random page of
    the ``request_id`` index, and every page a batch touches is written to the WAL."""
    if count == 1:
        return [new_id()]
    # Timestamp, version and variant set on all ids at once: 10,000 ids in ~1.7 ms instead
    # of ~4.4 ms one by one.
    raw = np.frombuffer(os.urandom(16 * count), np.uint8).reshape(count, 16).copy()
    now_ms = (time.time_ns() // 1_000_000).to_bytes(6, "big")
    raw[:, :6] = np.frombuffer(now_ms, np.uint8)  # the Unix time in milliseconds
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x70  # version 7: the 13th digit is 7
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # variant 10xx: the 17th digit is 8, 9, a or b
    text = raw.tobytes().hex()
    return [text[k : k + 32] for k in range(0, 32 * count, 32)]


def new_id() -> str:
    """One id for a one-row call: a time-ordered UUID (version 7: the Unix time in
    milliseconds, then 74 random bits) as 32 hex digits.

    Time-ordered because the prediction log indexes ``request_id``: a random id lands on a
    random page of that index, where ids that grow with time land on its last pages (see
    ``new_ids`` for the cost). Clients that send their own ids get the same benefit from
    time-ordered ones (UUIDv7, ULID). The random bits come from bytes drawn ahead by
    ``_POOL_IDS`` at a time (os.urandom; each byte is used once)."""
    global _pool, _next
    with _lock:
        if _next >= 32 * _POOL_IDS:
            _pool, _next = os.urandom(16 * _POOL_IDS).hex(), 0
        h = _pool[_next : _next + 32]
        _next += 32
    return f"{time.time_ns() // 1_000_000:012x}7{h[13:16]}{_VARIANT[h[16]]}{h[17:]}"


def complete_ids(given: Sequence[str | None] | None, n: int) -> list[str]:
    """One id per row: the client's where it gave one, a new one elsewhere."""
    if not given:
        return new_ids(n)
    fresh = iter(new_ids(sum(1 for request_id in given if not request_id)))
    return [request_id or next(fresh) for request_id in given]
