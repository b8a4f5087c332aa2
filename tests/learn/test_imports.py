"""import_dataset on the real database (SQLite and PostgreSQL): formats, row numbers, all or
nothing, chunking, the duplicate rule."""

from __future__ import annotations

import hashlib
import io
import json

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ia_continu.errors import (
    DuplicateDataset,
    InvalidActual,
    InvalidFeatures,
    UnreadableDataset,
)
from ia_continu.families import get_family
from ia_continu.learn.datasets import load_dataset
from ia_continu.learn.imports import import_dataset
from ia_continu.store.tables import Dataset, DatasetSample, FeatureSchema

BIKE = get_family("bike_traffic")


def bike_frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "hour": rng.integers(0, 24, n),
            "weekday": rng.integers(0, 7, n),
            "weather": rng.choice(["clear", "cloudy", "rain", "snow"], n),
            "counter": rng.choice(["station", "north_bridge", "park"], n),
            "count": rng.integers(0, 800, n),
            "comment": "ignored",  # not a feature, not the target: ignored
        }
    )


def csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def stored(engine) -> tuple[int, int]:
    with Session(engine) as s:
        return (
            s.scalar(select(func.count()).select_from(Dataset)),
            s.scalar(select(func.count()).select_from(DatasetSample)),
        )


def test_csv_rows_are_encoded_and_stored_with_source_and_schema(engine, tmp_path):
    frame = bike_frame(200)
    path = tmp_path / "counts.csv"
    path.write_bytes(csv_bytes(frame))

    result = import_dataset(engine, BIKE, path, fmt="csv", chunk_rows=64)

    assert result.rows == 200 and result.model == "bike_traffic"
    assert result.source_name == "counts.csv"
    assert result.fingerprint == hashlib.sha256(path.read_bytes()).hexdigest()
    with Session(engine) as s:
        ds = s.get(Dataset, result.generation_id)
        assert (ds.source, ds.source_name, ds.samples_count) == ("import", "counts.csv", 200)
        assert ds.fingerprint == result.fingerprint
        assert s.get(FeatureSchema, ds.schema_id).names == list(BIKE.feature_names)
        loaded = load_dataset(s, BIKE, result.generation_id)
    # Stored in file order, encoded as /predict encodes the same values.
    assert loaded.y.tolist() == frame["count"].astype(float).tolist()
    expected = BIKE.encode_frame(frame.drop(columns=["count", "comment"]))
    np.testing.assert_allclose(loaded.X, expected)


def test_a_bad_cell_names_the_file_row_and_column_and_stores_nothing(engine):
    frame = bike_frame(10).astype({"weather": object})
    frame.loc[2, "weather"] = "hail"  # data row 3 of the file
    with pytest.raises(InvalidFeatures) as caught:
        import_dataset(engine, BIKE, io.BytesIO(csv_bytes(frame)), fmt="csv")
    assert str(caught.value).startswith("row 3: weather: 'hail' is not one of")
    assert stored(engine) == (0, 0)


def test_chunks_are_streamed_and_a_bad_last_chunk_rolls_everything_back(engine):
    # 5,000 rows in chunks of 1,000: the first four chunks are inserted before the fifth
    # fails, and the transaction takes them back.
    frame = bike_frame(5000).astype({"hour": object})
    frame.loc[4711, "hour"] = "noon"
    with pytest.raises(InvalidFeatures) as caught:
        import_dataset(engine, BIKE, io.BytesIO(csv_bytes(frame)), fmt="csv", chunk_rows=1000)
    assert str(caught.value) == "row 4712: hour: 'noon' is text, not a number"
    assert stored(engine) == (0, 0)

    frame.loc[4711, "hour"] = 12
    result = import_dataset(engine, BIKE, io.BytesIO(csv_bytes(frame)), fmt="csv", chunk_rows=1000)
    assert result.rows == 5000 and stored(engine) == (1, 5000)


def test_a_spreadsheet_byte_order_mark_is_not_part_of_the_first_name(engine):
    body = "\ufeff".encode() + csv_bytes(bike_frame(12))
    assert import_dataset(engine, BIKE, io.BytesIO(body), fmt="csv").rows == 12


def test_a_bad_target_is_an_invalid_actual_naming_its_row(engine):
    frame = bike_frame(40)
    frame.loc[33, "count"] = -5
    with pytest.raises(InvalidActual, match=r"^row 34: target 'count': -5 is below"):
        import_dataset(engine, BIKE, io.BytesIO(csv_bytes(frame)), fmt="csv", chunk_rows=16)
    assert stored(engine) == (0, 0)


@pytest.mark.parametrize(
    ("name", "target", "column", "bad", "message"),
    [
        ("classification", "target", "feature2", 1e9, "feature2: 1e+09 is above the maximum"),
        ("delay", "delay_minutes", "hour", 25, "hour: 25 is above the maximum 23"),
    ],
)
def test_python_family_problems_name_the_cell_too(engine, name, target, column, bad, message):
    # The built-in Python families check whole matrices; their declaration names the cell.
    family = get_family(name)
    X, y = family.sample(300, rng=np.random.default_rng(1))
    frame = pd.DataFrame(X, columns=list(family.feature_names)).astype(object)
    frame[target] = y
    good = frame.loc[250, column]
    frame.loc[250, column] = bad
    with pytest.raises(InvalidFeatures) as caught:
        import_dataset(engine, family, io.BytesIO(csv_bytes(frame)), fmt="csv", chunk_rows=100)
    assert str(caught.value).startswith(f"row 251: {message}")
    assert stored(engine) == (0, 0)
    frame.loc[250, column] = good
    result = import_dataset(engine, family, io.BytesIO(csv_bytes(frame)), fmt="csv")
    with Session(engine) as s:
        loaded = load_dataset(s, family, result.generation_id)
    np.testing.assert_allclose(loaded.X, X, atol=1e-6)
    np.testing.assert_allclose(loaded.y, y, atol=1e-6)


def test_parquet_and_json_lines_and_json_array(engine):
    frame = bike_frame(120, seed=3).drop(columns=["comment"])
    parquet = io.BytesIO()
    frame.to_parquet(parquet, index=False)
    lines = frame.to_json(orient="records", lines=True).encode()
    array = json.dumps(frame.to_dict(orient="records")).encode()

    results = [
        import_dataset(engine, BIKE, io.BytesIO(parquet.getvalue()), fmt="parquet", chunk_rows=50),
        import_dataset(engine, BIKE, io.BytesIO(lines), fmt="json", chunk_rows=50),
        import_dataset(engine, BIKE, io.BytesIO(array), fmt="json", chunk_rows=50),
    ]

    assert [r.rows for r in results] == [120, 120, 120]
    with Session(engine) as s:
        matrices = [load_dataset(s, BIKE, r.generation_id).X for r in results]
    np.testing.assert_array_equal(matrices[0], matrices[1])
    np.testing.assert_array_equal(matrices[0], matrices[2])


def test_json_lines_problems_name_the_record(engine):
    rows = bike_frame(5).drop(columns=["comment"]).to_dict(orient="records")
    rows[3]["weekday"] = 9
    body = "\n".join(json.dumps(r) for r in rows).encode()
    with pytest.raises(InvalidFeatures, match=r"^row 4: weekday: 9 is above the maximum 6"):
        import_dataset(engine, BIKE, io.BytesIO(body), fmt="json")
    with pytest.raises(UnreadableDataset, match=r"^row 2: not a JSON object"):
        import_dataset(engine, BIKE, io.BytesIO(b'{"hour": 1}\n[1, 2]\n'), fmt="json")
    assert stored(engine) == (0, 0)


def test_the_same_content_twice_is_refused_unless_allowed(engine):
    body = csv_bytes(bike_frame(30))
    first = import_dataset(engine, BIKE, io.BytesIO(body), fmt="csv")
    with pytest.raises(DuplicateDataset, match=f"as dataset {first.generation_id} "):
        import_dataset(engine, BIKE, io.BytesIO(body), fmt="csv")
    assert stored(engine) == (1, 30)

    again = import_dataset(engine, BIKE, io.BytesIO(body), fmt="csv", allow_duplicate=True)
    assert again.generation_id != first.generation_id and again.fingerprint == first.fingerprint
    # Another model may hold the same bytes: the rule is per model (iris refuses the columns).
    with pytest.raises(InvalidFeatures, match="missing columns sepal_length"):
        import_dataset(engine, get_family("iris"), io.BytesIO(body), fmt="csv")
    assert stored(engine) == (2, 60)


@pytest.mark.parametrize(
    ("body", "fmt", "error", "message"),
    [
        (b"", "csv", UnreadableDataset, "not a readable CSV file"),
        (b"hour,weekday,weather,counter,count\n", "csv", UnreadableDataset, "no data rows"),
        (b"hour,weekday\n1,2\n", "csv", InvalidFeatures, "missing columns weather, counter"),
        (b"hour,weekday,weather,counter\n1,2,rain,park\n", "csv", InvalidActual, "count"),
        (b"PAR1 not really", "parquet", UnreadableDataset, "not a readable Parquet file"),
        (b"[1, 2]", "json", UnreadableDataset, "row 1: not a JSON object"),
        (b"{nope}\n", "json", UnreadableDataset, "row 1: not a JSON object"),
    ],
)
def test_unreadable_or_incomplete_files_are_refused(engine, body, fmt, error, message):
    with pytest.raises(error, match=message):
        import_dataset(engine, BIKE, io.BytesIO(body), fmt=fmt)
    assert stored(engine) == (0, 0)


BIG = "9" * 1000
HEADER = "hour,weekday,weather,counter,count\n"
ROW = '"weekday": 1, "weather": "rain", "counter": "park", "count": 1'


@pytest.mark.parametrize(
    ("fmt", "body", "message"),
    [
        ("csv", f"{HEADER}{BIG},1,rain,park,3\n", "row 1: hour: "),
        ("csv", f"{HEADER}1,1,rain,park,1e999\n", "row 1: target 'count': '1e999' is not"),
        ("csv", b"\x00\xff\xfe", "not a readable CSV file"),
        ("json", "[" * 100_000 + "]" * 100_000, "not valid JSON"),
        ("json", '{"a":' * 100_000 + "1" + "}" * 100_000, "row 1: not a JSON object"),
        ("json", f'{{"hour": {BIG}, {ROW}}}', "row 1: hour: inf is not a finite number"),
        ("json", f'{{"hour": NaN, {ROW}}}', "row 1: hour: is missing"),
        ("json", f'{{"hour": [1], {ROW}}}\n', "row 1: "),
        ("json", f'{{"hour": 1, {ROW}}}\n{{"hour": 2, {ROW}, "weather": {{}}}}', "row 2: "),
        ("json", "[]", "no data rows"),
        ("parquet", b"", "not a readable Parquet file"),
    ],
)
def test_hostile_files_are_refused_by_name_never_with_a_crash(engine, fmt, body, message):
    data = body.encode() if isinstance(body, str) else body
    with pytest.raises((InvalidFeatures, InvalidActual, UnreadableDataset), match=message):
        import_dataset(engine, BIKE, io.BytesIO(data), fmt=fmt)
    assert stored(engine) == (0, 0)
