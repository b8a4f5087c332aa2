"""Sticky bucketing: which requests the ML share and the shadow sample take.

The way Unleash does it: the request id is hashed into one of 10,000 buckets, and a request
is in a share of ``percentage`` when its bucket is below ``percentage x 100``. The hash is
blake2b, not Python's ``hash()`` (salted per process), so the same id lands in the same bucket
in every process and every restart: a client retrying a request gets the same answerer, and
raising the share only adds ids (none that had ML loses it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

BUCKETS = 10_000
ROLLOUT_SALT = "ml-rollout"
# A different salt: the shadow sample must not be correlated with the rollout share.
SHADOW_SALT = "shadow"
# The challenger arm's canary share and shadow sample: independent of both of the above.
CANARY_SALT = "challenger-canary"
CHALLENGER_SHADOW_SALT = "challenger-shadow"


def bucket(request_id: str, salt: str = ROLLOUT_SALT) -> int:
    """The id's bucket, 0..BUCKETS-1, the same in every process."""
    digest = hashlib.blake2b(f"{salt}:{request_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def in_share(request_id: str, percentage: float) -> bool:
    """Is this id among the ``percentage`` (0..100) of ids routed to ML?"""
    return bucket(request_id) < percentage * (BUCKETS // 100)


def in_shadow_sample(request_id: str, rate: float) -> bool:
    """Is this id among the ``rate`` (0..1) of ids scored by both ML and the fallback?"""
    return rate > 0 and bucket(request_id, SHADOW_SALT) < rate * BUCKETS


def in_canary(request_id: str, percentage: float) -> bool:
    """Is this id among the ``percentage`` (0..100) of ML ids the challenger answers? Growing
    the share only adds ids: a request the challenger answered stays with it."""
    return bucket(request_id, CANARY_SALT) < percentage * (BUCKETS // 100)


def in_challenger_sample(request_id: str, rate: float) -> bool:
    """Is this id among the ``rate`` (0..1) of the champion's ids the challenger also scores?"""
    return rate > 0 and bucket(request_id, CHALLENGER_SHADOW_SALT) < rate * BUCKETS


# The same decisions for a whole batch of ids, as boolean arrays: the predictor's form. The
# hash of "salt:" is computed once and copied per id (what ``bucket`` hashes, the same bytes):
# hashing 10,000 ids costs ~4 ms instead of ~15 ms one ``bucket`` call at a time.


def buckets(request_ids: Sequence[str], salt: str = ROLLOUT_SALT) -> np.ndarray:
    """``bucket`` of every id (an integer array)."""
    if len(request_ids) == 1:  # a one-row call: 1.4 µs this way, 5.6 µs through the copies
        return np.array([bucket(request_ids[0], salt)])
    salted = hashlib.blake2b(f"{salt}:".encode(), digest_size=8)
    digests = []
    for request_id in request_ids:
        h = salted.copy()
        h.update(request_id.encode())
        digests.append(h.digest())
    return np.frombuffer(b"".join(digests), dtype=">u8") % BUCKETS


def share_mask(request_ids: Sequence[str], percentage: float) -> np.ndarray:
    """``in_share`` of every id."""
    return buckets(request_ids) < percentage * (BUCKETS // 100)


def shadow_mask(request_ids: Sequence[str], rate: float) -> np.ndarray:
    """``in_shadow_sample`` of every id."""
    if rate <= 0:
        return np.zeros(len(request_ids), bool)
    return buckets(request_ids, SHADOW_SALT) < rate * BUCKETS


def canary_mask(request_ids: Sequence[str], percentage: float) -> np.ndarray:
    """``in_canary`` of every id."""
    return buckets(request_ids, CANARY_SALT) < percentage * (BUCKETS // 100)


def challenger_mask(request_ids: Sequence[str], rate: float) -> np.ndarray:
    """``in_challenger_sample`` of every id."""
    if rate <= 0:
        return np.zeros(len(request_ids), bool)
    return buckets(request_ids, CHALLENGER_SHADOW_SALT) < rate * BUCKETS
