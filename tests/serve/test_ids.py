"""Request ids made for the rows that came without one."""

from __future__ import annotations

import time
import uuid

from ia_continu.serve.ids import complete_ids, new_ids


def test_new_ids_are_uuid_hex():
    ids = new_ids(1000)
    assert len(set(ids)) == 1000
    for value in ids:
        parsed = uuid.UUID(hex=value)
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122 and parsed.hex == value


def test_given_ids_are_kept_and_only_the_missing_ones_made():
    ids = complete_ids(["a", None, "b", ""], 4)
    assert ids[0] == "a" and ids[2] == "b"
    assert all(len(ids[i]) == 32 for i in (1, 3)) and ids[1] != ids[3]
    assert len(complete_ids(None, 3)) == 3


def test_one_row_ids_are_time_ordered_uuid7_unique_across_refills_and_threads():
    from concurrent.futures import ThreadPoolExecutor

    from ia_continu.serve import ids as module

    before_ms = time.time_ns() // 1_000_000
    # Several pools' worth (256 ids each), drawn from 4 threads at once.
    with ThreadPoolExecutor(4) as pool:
        drawn = [i for batch in pool.map(lambda _: new_ids(1), range(3000)) for i in batch]
    after_ms = time.time_ns() // 1_000_000
    assert len(drawn) == len(set(drawn)) == 3000
    for value in drawn:
        parsed = uuid.UUID(hex=value)
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122 and parsed.hex == value
        assert before_ms <= int(value[:12], 16) <= after_ms  # the Unix time in milliseconds
    assert module._next <= 32 * module._POOL_IDS
    # Later ids sort after earlier ones (from one millisecond to the next).
    first = new_ids(1)[0]
    time.sleep(0.002)
    assert new_ids(1)[0] > first
    # The random part still takes every value: all 16 digits at each random position.
    digits = [{value[k] for value in drawn} for k in range(32)]
    assert digits[12] == {"7"} and digits[16] == set("89ab")
    assert all(len(digits[k]) == 16 for k in (*range(13, 16), *range(17, 32)))
