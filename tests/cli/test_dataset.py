"""``ia-continu dataset import`` against a live API server (uvicorn in a subprocess, real
SQLite): the file is streamed, the answer printed, a refused file is one line and exit 1."""

from __future__ import annotations

import httpx
import pytest

from tests.cli.conftest import live_api, run_cli
from tests.learn.test_imports import bike_frame, csv_bytes

KEY = "cli-dataset-key-0123456789"


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli-dataset")
    with live_api(tmp, KEY) as running:
        yield running


def test_import_prints_the_dataset_and_it_is_stored(live, tmp_path):
    env, url = live
    frame = bike_frame(300, seed=9).drop(columns=["comment"])
    path = tmp_path / "counts.parquet"
    frame.to_parquet(path, index=False)

    r = run_cli(env, "dataset", "import", str(path), "--model", "bike_traffic")

    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("imported 300 rows of counts.parquet into bike_traffic as dataset")
    listed = httpx.get(url + "/models/bike_traffic/datasets", headers={"X-API-Key": KEY}).json()
    assert [(d["source_name"], d["rows"]) for d in listed] == [("counts.parquet", 300)]


def test_a_refused_file_prints_the_api_message_and_fails(live, tmp_path):
    env, _ = live
    frame = bike_frame(10).astype({"weather": object})
    frame.loc[2, "weather"] = "hail"
    path = tmp_path / "bad.txt"
    path.write_bytes(csv_bytes(frame))

    r = run_cli(env, "dataset", "import", str(path), "--model", "bike_traffic")
    assert r.returncode == 2 and "--format csv|parquet|json" in r.stderr

    r = run_cli(env, "dataset", "import", str(path), "--model", "bike_traffic", "--format", "csv")
    assert r.returncode == 1
    assert r.stderr.startswith("error: the API answered 422: row 3: weather: 'hail'"), r.stderr
