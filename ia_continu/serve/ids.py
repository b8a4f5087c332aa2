"""Request ids for the rows a client sent without one."""

from __future__ import annotations

import os
from collections.abc import Sequence

# The UUID variant digit (10xx in binary: 8, 9, a or b) for any random hex digit.
_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


def new_ids(count: int) -> list[str]:
    """``count`` random UUID4s as 32 hex digits (what ``uuid.uuid4().hex`` gives), from one
    ``os.urandom`` call: ``uuid4()`` per row cost 25 ms of a 10,000-row batch."""
    raw = os.urandom(16 * count).hex()
    return [
        f"{h[:12]}4{h[13:16]}{_VARIANT[h[16]]}{h[17:]}"
        for h in (raw[k : k + 32] for k in range(0, 32 * count, 32))
    ]


def complete_ids(given: Sequence[str | None] | None, n: int) -> list[str]:
    """One id per row: the client's where it gave one, a new one elsewhere."""
    if not given:
        return new_ids(n)
    fresh = iter(new_ids(sum(1 for request_id in given if not request_id)))
    return [request_id or next(fresh) for request_id in given]
