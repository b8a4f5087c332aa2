from __future__ import annotations

import pytest
from sqlalchemy import func, select

from ia_continu.store.engine import session_scope
from ia_continu.store.tables import Dataset, DatasetSample
from tests.conftest import ADMIN


def test_generate_stores_the_samples(client):
    r = client.post("/generate", json={"samples": 250, "seed": 7}, headers=ADMIN)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["samples_created"] == 250
    with session_scope(client.app.state.runtime.engine) as s:
        ds = s.get(Dataset, body["generation_id"])
        n = s.scalar(
            select(func.count())
            .select_from(DatasetSample)
            .where(DatasetSample.generation_id == ds.generation_id)
        )
        targets = set(s.scalars(select(DatasetSample.target)).all())
    assert n == 250 and ds.family == "classification" and ds.seed == 7
    assert targets == {0.0, 1.0}


def test_generate_default_is_1000_samples(client):
    r = client.post("/generate", headers=ADMIN)
    assert r.status_code == 200
    assert r.json()["samples_created"] == 1000


def test_same_seed_same_data(client):
    ids = [
        client.post(
            "/generate", json={"samples": 100, "seed": 3, "drift": False}, headers=ADMIN
        ).json()["generation_id"]
        for _ in range(2)
    ]
    with session_scope(client.app.state.runtime.engine) as s:
        rows = [
            s.scalars(
                select(DatasetSample.features)
                .where(DatasetSample.generation_id == g)
                .order_by(DatasetSample.id)
            ).all()
            for g in ids
        ]
    assert rows[0] == rows[1]


def test_drift_shifts_feature1(client):
    from ia_continu.store.engine import session_scope

    means = {}
    for drift in (False, True):
        g = client.post(
            "/generate", json={"samples": 2000, "seed": 5, "drift": drift}, headers=ADMIN
        ).json()
        assert g["drift"] is drift
        with session_scope(client.app.state.runtime.engine) as s:
            feats = s.scalars(
                select(DatasetSample.features).where(
                    DatasetSample.generation_id == g["generation_id"]
                )
            ).all()
        means[drift] = sum(f[0] for f in feats) / len(feats)
    assert means[False] - means[True] == pytest.approx(0.5, abs=1e-6)


@pytest.mark.parametrize("samples", [99, 10_001, "many", -5])
def test_samples_out_of_range_is_422(client, samples):
    r = client.post("/generate", json={"samples": samples}, headers=ADMIN)
    assert r.status_code == 422
    assert "samples" in r.text


def test_generate_needs_the_key(client):
    assert client.post("/generate", json={"samples": 100}).status_code == 401
    assert (
        client.post("/generate", json={"samples": 100}, headers={"X-API-Key": "wrong"}).status_code
        == 403
    )
