"""flows/ingest.py: each file of a model's folder loads once, by content; a changed file loads
again; a bad file is reported and alerted, does not block the good ones, and is retried only
once its content changed; a SQL query's rows load once."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sqlalchemy import func, select

from flows.ingest import ingest, ingest_every_model
from ia_continu.store.engine import session_scope
from ia_continu.store.tables import Dataset, DatasetSample


def bike_rows(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "hour": rng.integers(0, 24, n),
            "weekday": rng.integers(0, 7, n),
            "weather": rng.choice(["clear", "cloudy", "rain", "snow"], n),
            "counter": rng.choice(["north_bridge", "river_path", "station"], n),
            "count": rng.integers(0, 400, n),
        }
    )


def datasets(engine) -> list[tuple[str | None, str | None, int]]:
    with session_scope(engine) as session:
        return [
            (d.source, d.source_name, d.samples_count)
            for d in session.scalars(
                select(Dataset)
                .where(Dataset.family == "bike_traffic")
                .order_by(Dataset.generation_id)
            )
        ]


def samples(engine) -> int:
    with session_scope(engine) as session:
        return session.scalar(select(func.count()).select_from(DatasetSample)) or 0


def test_each_file_loads_once_and_a_bad_one_does_not_block(flow_settings, engine, receiver):
    folder = flow_settings.data_dir / "inbox" / "bike_traffic"
    folder.mkdir(parents=True)
    bike_rows(300, 1).to_csv(folder / "monday.csv", index=False)
    bike_rows(200, 2).to_parquet(folder / "tuesday.parquet")
    bad = bike_rows(50, 3)
    bad.loc[2, "weather"] = "hail"  # data row 3
    bad.to_csv(folder / "wednesday.csv", index=False)
    (folder / "notes.txt").write_text("not a dataset")

    first = ingest(model="bike_traffic")
    assert sorted((x["name"], x["rows"]) for x in first["loaded"]) == [
        ("monday.csv", 300),
        ("tuesday.parquet", 200),
    ]
    ((refused),) = first["refused"]
    assert refused["name"] == "wednesday.csv"
    assert "row 3" in refused["error"] and "weather" in refused["error"]
    assert datasets(engine) == [
        ("ingest", "monday.csv", 300),
        ("ingest", "tuesday.parquet", 200),
    ]
    assert samples(engine) == 500
    (alert,) = receiver.embeds()
    assert alert["title"] == "Ingest: file refused (bike_traffic)"
    assert "wednesday.csv" in alert["description"] and "hail" in alert["description"]

    # Nothing new: nothing loaded, the bad file not parsed (nor alerted) again.
    second = ingest(model="bike_traffic")
    assert second["loaded"] == [] and second["refused"] == []
    assert sorted(second["skipped"]) == ["monday.csv", "tuesday.parquet", "wednesday.csv"]
    assert samples(engine) == 500 and len(receiver.embeds()) == 1

    # A changed file loads again; the fixed bad file loads now.
    bike_rows(310, 4).to_csv(folder / "monday.csv", index=False)
    bad.loc[2, "weather"] = "rain"
    bad.to_csv(folder / "wednesday.csv", index=False)
    third = ingest(model="bike_traffic")
    assert sorted((x["name"], x["rows"]) for x in third["loaded"]) == [
        ("monday.csv", 310),
        ("wednesday.csv", 50),
    ]
    assert third["skipped"] == ["tuesday.parquet"] and third["refused"] == []
    assert samples(engine) == 860


def test_the_daily_deployment_finds_models_by_their_folder(flow_settings, engine):
    inbox = flow_settings.data_dir / "inbox"
    (inbox / "bike_traffic").mkdir(parents=True)
    (inbox / "not_a_model").mkdir()
    bike_rows(100, 5).to_json(inbox / "bike_traffic" / "day.jsonl", orient="records", lines=True)
    out = ingest_every_model()
    assert list(out) == ["bike_traffic"]
    assert [x["rows"] for x in out["bike_traffic"]["loaded"]] == [100]


def test_a_query_s_rows_load_once(flow_settings, engine, tmp_path):
    from sqlalchemy import create_engine

    source_url = f"sqlite:///{tmp_path / 'counts.db'}"
    source = create_engine(source_url)
    bike_rows(120, 6).to_sql("counts", source, index=False)
    query = "SELECT hour, weekday, weather, counter, count FROM counts"
    first = ingest(model="bike_traffic", query=query, database_url=source_url)
    assert [x["rows"] for x in first["loaded"]] == [120]
    assert ingest(model="bike_traffic", query=query, database_url=source_url)["loaded"] == []
    # New rows in the source: the query's answer changed, so it loads again.
    bike_rows(10, 7).to_sql("counts", source, index=False, if_exists="append")
    again = ingest(model="bike_traffic", query=query, database_url=source_url)
    assert [x["rows"] for x in again["loaded"]] == [130]
    source.dispose()
    with session_scope(engine) as session:
        names = session.scalars(
            select(Dataset.source_name).where(Dataset.family == "bike_traffic")
        ).all()
    assert names == [query, query]


def test_a_failing_model_does_not_stop_the_others(flow_settings, engine, receiver):
    folder = flow_settings.data_dir / "inbox" / "bike_traffic"
    folder.mkdir(parents=True)
    bike_rows(80, 8).to_csv(folder / "day.csv", index=False)
    state = ingest_every_model(models=["no_such_model", "bike_traffic"], return_state=True)
    assert state.is_failed()
    assert "model no_such_model" in state.message and "no model named" in state.message
    assert samples(engine) == 80  # bike_traffic ran all the same
    titles = [e["title"] for e in receiver.embeds()]
    assert "Flow ingest failed (model no_such_model)" in titles
    assert "Flow ingest_every_model failed" in titles
