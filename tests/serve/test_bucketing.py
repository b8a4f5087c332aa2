"""Sticky bucketing: the same id gets the same answer in every process, and shares are exact."""

from __future__ import annotations

import json
import subprocess
import sys

from ia_continu.serve import bucketing

IDS = [f"req-{i}" for i in range(500)] + ["", "é-unicode-☃", "x" * 100]


def test_same_request_id_same_decision_in_another_process():
    code = (
        "import json, sys\n"
        "from ia_continu.serve.bucketing import bucket, in_share\n"
        "ids = json.load(sys.stdin)\n"
        "print(json.dumps([[bucket(i), in_share(i, 25.0), in_share(i, 60.0)] for i in ids]))\n"
    )
    # A fresh interpreter with a different hash seed: Python's own hash() would disagree.
    out = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(IDS),
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345", "PATH": ""},
    )
    theirs = json.loads(out.stdout)
    ours = [
        [bucketing.bucket(i), bucketing.in_share(i, 25.0), bucketing.in_share(i, 60.0)] for i in IDS
    ]
    assert theirs == ours


def test_25_percent_configured_gives_25_percent_of_10000_ids():
    ids = [f"booking-{i}" for i in range(10_000)]
    share = sum(bucketing.in_share(i, 25) for i in ids) / len(ids)
    assert abs(share - 0.25) <= 0.02


def test_raising_the_share_only_adds_ids():
    ids = [f"u{i}" for i in range(5000)]
    at_10 = {i for i in ids if bucketing.in_share(i, 10)}
    at_30 = {i for i in ids if bucketing.in_share(i, 30)}
    assert at_10 <= at_30
    assert not any(bucketing.in_share(i, 0) for i in ids)
    assert all(bucketing.in_share(i, 100) for i in ids)


def test_shadow_sample_is_independent_of_the_rollout_share():
    ids = [f"s{i}" for i in range(10_000)]
    in_ml = [i for i in ids if bucketing.in_share(i, 50)]
    shadow_in_ml = sum(bucketing.in_shadow_sample(i, 0.2) for i in in_ml) / len(in_ml)
    assert abs(shadow_in_ml - 0.2) <= 0.03


def test_the_batch_masks_decide_as_the_one_id_functions():
    ids = [*IDS, *(f"{i:032x}" for i in range(2000))]
    for salt in (
        bucketing.ROLLOUT_SALT,
        bucketing.SHADOW_SALT,
        bucketing.CANARY_SALT,
        bucketing.CHALLENGER_SHADOW_SALT,
    ):
        assert bucketing.buckets(ids, salt).tolist() == [bucketing.bucket(i, salt) for i in ids]
    for pct in (0, 0.01, 12.5, 50, 99.99, 100):
        assert bucketing.share_mask(ids, pct).tolist() == [bucketing.in_share(i, pct) for i in ids]
        assert bucketing.canary_mask(ids, pct).tolist() == [
            bucketing.in_canary(i, pct) for i in ids
        ]
    for rate in (0, 0.001, 0.2, 1):
        assert bucketing.shadow_mask(ids, rate).tolist() == [
            bucketing.in_shadow_sample(i, rate) for i in ids
        ]
        assert bucketing.challenger_mask(ids, rate).tolist() == [
            bucketing.in_challenger_sample(i, rate) for i in ids
        ]
    assert bucketing.shadow_mask([], 0.5).tolist() == []
    assert bucketing.share_mask([], 50).tolist() == []
