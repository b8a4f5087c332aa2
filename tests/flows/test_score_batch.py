"""flows/score_batch.py: a file scored by a declared model's champion, every row logged with
its request and booking ids, answered as /predict/batch answers; its outcomes posted to
/models/iris/actuals join those rows; monitor_performance then computes iris's metrics."""

from __future__ import annotations

import pandas as pd
from sklearn.datasets import load_iris
from sqlalchemy import func, select

from flows.monitor_performance import monitor_every_model, monitor_performance
from flows.score_batch import score_batch
from ia_continu.store.engine import session_scope
from ia_continu.store.tables import PredictionLog
from tests.conftest import ADMIN
from tests.flows.conftest import flush

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
SPECIES = ["setosa", "versicolor", "virginica"]


def iris_file(path) -> pd.DataFrame:
    data = load_iris()
    frame = pd.DataFrame(data.data, columns=FEATURES)
    frame.insert(0, "request_id", [f"night-{i}" for i in range(len(frame))])
    frame["booking_id"] = [f"b-{i}" for i in range(len(frame))]
    frame["species"] = [SPECIES[k] for k in data.target]
    frame.to_csv(path, index=False)
    return frame


def train_iris(client) -> None:
    r = client.post("/models/iris/generate", json={"samples": 300, "seed": 1}, headers=ADMIN)
    assert r.status_code == 200, r.text
    r = client.post("/models/iris/retrain", headers=ADMIN)
    assert r.status_code == 200 and r.json()["champion_version"] == "1", r.text


def logged(engine, prefix: str) -> list[PredictionLog]:
    with session_scope(engine) as session:
        rows = session.scalars(
            select(PredictionLog)
            .where(PredictionLog.request_id.like(f"{prefix}%"))
            .order_by(PredictionLog.id)
        ).all()
        session.expunge_all()
        return list(rows)


def test_scored_rows_are_logged_and_their_outcomes_join(flow_settings, client, engine, tmp_path):
    train_iris(client)
    frame = iris_file(tmp_path / "tonight.csv")

    out = score_batch(model="iris", path=str(tmp_path / "tonight.csv"), chunk_rows=40)
    assert out["rows"] == out["logged"] == 150 and out["spooled"] == 0
    assert out["served_by"] == {"ml": 150} and out["model_versions"] == ["1"]

    # The answers are the API's answers to the same rows.
    answers = pd.read_csv(out["output"])
    assert answers["request_id"].tolist() == frame["request_id"].tolist()
    r = client.post(
        "/models/iris/predict/batch",
        json={"features": frame[FEATURES].to_dict("records")},
    )
    assert r.status_code == 200, r.text
    assert answers["prediction"].tolist() == r.json()["predictions"]
    assert answers["confidence"].tolist() == r.json()["confidence"]

    rows = logged(engine, "night-")
    assert [x.request_id for x in rows] == frame["request_id"].tolist()
    assert [x.booking_id for x in rows] == frame["booking_id"].tolist()
    assert {x.family for x in rows} == {"iris"} and {x.model_version for x in rows} == {"1"}
    assert [SPECIES[int(x.prediction)] for x in rows] == answers["prediction"].tolist()

    # Outcomes, by request id and by class label, join the scored rows.
    items = [
        {"request_id": rid, "actual": species}
        for rid, species in zip(frame["request_id"], frame["species"], strict=True)
    ]
    r = client.post("/models/iris/actuals", json={"actuals": items}, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["updated"] == 150 and r.json()["unknown_request_ids"] == []
    rows = logged(engine, "night-")
    assert [SPECIES[int(x.actual)] for x in rows] == frame["species"].tolist()
    accurate = sum(bool(x.is_accurate) for x in rows)
    assert accurate >= 140  # iris is easy: the champion is right on most rows

    # A flow run for iris computes iris's metrics (the classification model has none).
    perf = monitor_performance(model="iris")
    window = perf["metrics"]["24h"]
    # 150 scored tonight plus the 150 of the /predict/batch call; the night's have outcomes.
    assert window["count"] == 300 and window["labeled_count"] == 150
    assert window["accuracy_rate"] == round(accurate / 150, 6)
    # The hourly deployment's fan-out: every model with a champion, iris only here.
    every = monitor_every_model()
    assert list(every) == ["iris"] and every["iris"]["metrics"]["24h"]["labeled_count"] == 150


def test_a_stored_dataset_is_scored_with_generated_ids(flow_settings, client, engine):
    train_iris(client)
    r = client.post("/models/iris/generate", json={"samples": 120, "seed": 2}, headers=ADMIN)
    assert r.status_code == 200, r.text
    gid = r.json()["generation_id"]
    out = score_batch(model="iris", generation_id=gid)
    assert out["rows"] == out["logged"] == 120
    assert [x.request_id for x in logged(engine, f"iris-g{gid}-")][:2] == [
        f"iris-g{gid}-1",
        f"iris-g{gid}-2",
    ]


def test_a_bad_row_stops_the_run_before_anything_is_logged(
    flow_settings, client, engine, tmp_path, receiver
):
    train_iris(client)
    frame = iris_file(tmp_path / "bad.csv")
    frame["petal_length"] = frame["petal_length"].astype(object)
    frame.loc[44, "petal_length"] = "long"  # data row 45, in the second chunk of 40
    frame.to_csv(tmp_path / "bad.csv", index=False)
    flush(client)
    with session_scope(engine) as session:
        before = session.scalar(select(func.count()).select_from(PredictionLog))

    state = score_batch(
        model="iris", path=str(tmp_path / "bad.csv"), chunk_rows=40, return_state=True
    )
    assert state.is_failed()
    assert "rows 41-80" in state.message and "petal_length" in state.message
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(PredictionLog)) == before
    (alert,) = receiver.embeds()
    assert alert["title"] == "Flow score_batch failed (model iris)"
