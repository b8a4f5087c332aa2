"""Sticky bucketing: which requests the ML share and the shadow sample take.

The way Unleash does it: the request id is hashed into one of 10,000 buckets, and a request
is in a share of ``percentage`` when its bucket is below ``percentage x 100``. The hash is
blake2b, not Python's ``hash()`` (salted per process), so the same id lands in the same bucket
in every process and every restart: a client retrying a request gets the same answerer, and
raising the share only adds ids (none that had ML loses it).
"""

from __future__ import annotations

import hashlib

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
