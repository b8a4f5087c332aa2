"""Ids made for a batch in one go keep every random bit a UUID4 has."""

from __future__ import annotations

import uuid

from ia_continu.serve.ids import new_ids


def test_batch_ids_set_only_the_version_and_variant_bits():
    ids = new_ids(4000)
    assert len(set(ids)) == 4000
    for value in ids:
        parsed = uuid.UUID(hex=value)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and parsed.hex == value
    digits = [{value[k] for value in ids} for k in range(32)]
    assert digits[12] == {"4"}
    assert digits[16] == set("89ab")  # the variant digit keeps its two random bits
    assert all(len(seen) == 16 for k, seen in enumerate(digits) if k not in (12, 16))
    assert new_ids(0) == [] and len(new_ids(2)) == 2
