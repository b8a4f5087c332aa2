"""Request ids made for the rows that came without one."""

from __future__ import annotations

import uuid

from ia_continu.serve.ids import complete_ids, new_ids


def test_new_ids_are_uuid4_hex():
    ids = new_ids(1000)
    assert len(set(ids)) == 1000
    for value in ids:
        parsed = uuid.UUID(hex=value)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and parsed.hex == value


def test_given_ids_are_kept_and_only_the_missing_ones_made():
    ids = complete_ids(["a", None, "b", ""], 4)
    assert ids[0] == "a" and ids[2] == "b"
    assert all(len(ids[i]) == 32 for i in (1, 3)) and ids[1] != ids[3]
    assert len(complete_ids(None, 3)) == 3


def test_one_row_ids_from_the_pool_stay_uuid4_and_unique_across_refills_and_threads():
    from concurrent.futures import ThreadPoolExecutor

    from ia_continu.serve import ids as module

    # Several pools' worth (256 ids each), drawn from 4 threads at once.
    with ThreadPoolExecutor(4) as pool:
        drawn = [i for batch in pool.map(lambda _: new_ids(1), range(3000)) for i in batch]
    assert len(drawn) == len(set(drawn)) == 3000
    for value in drawn:
        parsed = uuid.UUID(hex=value)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
    assert module._next <= 32 * module._POOL_IDS
