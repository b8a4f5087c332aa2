"""Ids made for a batch in one go: time-ordered UUIDs (version 7) that share the call's
millisecond and keep every one of their 74 random bits."""

from __future__ import annotations

import time
import uuid

from ia_continu.serve.ids import new_ids


def test_batch_ids_are_uuid7_of_the_call_millisecond_with_random_bits():
    before_ms = time.time_ns() // 1_000_000
    ids = new_ids(4000)
    after_ms = time.time_ns() // 1_000_000
    assert len(set(ids)) == 4000
    for value in ids:
        parsed = uuid.UUID(hex=value)
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122 and parsed.hex == value
    stamps = {int(value[:12], 16) for value in ids}
    assert len(stamps) == 1 and before_ms <= stamps.pop() <= after_ms
    digits = [{value[k] for value in ids} for k in range(32)]
    assert digits[12] == {"7"}
    assert digits[16] == set("89ab")  # the variant digit keeps its two random bits
    assert all(len(digits[k]) == 16 for k in (*range(13, 16), *range(17, 32)))
    # A later call's ids sort after this one's: they land on the request_id index's end.
    time.sleep(0.002)
    assert min(new_ids(10)) > max(ids)
    assert new_ids(0) == [] and len(new_ids(2)) == 2
