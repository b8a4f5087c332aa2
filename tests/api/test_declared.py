"""GET /models/declared on the real app: the built-in declarations, a user folder, and a
malformed declaration refusing the start."""

from __future__ import annotations

import pytest

from ia_continu.declared import DeclarationError

HOUSES = """
name = "houses"
description = "Price of a house."
task = "regression"
tolerance = 10.0

[[features]]
name = "size"
type = "number"
min = 10
max = 1000

[[features]]
name = "city"
type = "category"
values = ["north", "south"]

[[features]]
name = "garden"
type = "boolean"
optional = true
default = false

[target]
name = "price"

[estimator]
class = "sklearn.linear_model.Ridge"
params = { alpha = 0.5 }

[fallback]
formula = "size * 2"
"""


def test_lists_the_four_builtins_and_marks_the_served_family(client):
    r = client.get("/models/declared")
    assert r.status_code == 200, r.text
    models = {m["name"]: m for m in r.json()}
    assert set(models) == {"bike_traffic", "classification", "delay", "iris"}
    assert [name for name, m in models.items() if m["served"]] == ["classification"]
    assert all(m["builtin"] for m in models.values())

    delay = models["delay"]
    assert delay["source"] == "ia_continu/declared/builtin/delay.toml"
    assert delay["task"] == "regression" and delay["tolerance"] == 3.0
    assert [f["name"] for f in delay["features"]] == [
        "distance_km",
        "hour",
        "weekday",
        "weather",
        "traffic",
    ]
    weather = delay["features"][3]
    assert weather["type"] == "category" and weather["values"] == [0, 1, 2]
    assert delay["features"][0]["min"] == 0 and delay["features"][0]["max"] == 1000
    assert delay["target"]["name"] == "delay_minutes"
    assert delay["estimator"] == {"class": "sklearn.linear_model.Ridge", "params": {"alpha": 1.0}}
    assert [s["class"] for s in delay["pipeline"]] == [
        "sklearn.preprocessing.PolynomialFeatures",
        "sklearn.preprocessing.StandardScaler",
    ]
    assert delay["gate"] == {
        "metric": "rmse",
        "direction": "lower",
        "margin": 0.0,
        "holdout_fraction": 0.2,
    }
    assert delay["fallback"] == {"kind": "formula", "value": "distance_km * 0.5", "confidence": 0.5}
    assert delay["simulator"] == {"name": "delay", "drift": 0.5}

    iris = models["iris"]
    assert iris["target"]["classes"] == ["setosa", "versicolor", "virginica"]
    assert iris["gate"]["direction"] == "higher" and iris["fallback"]["kind"] == "strategy"
    assert iris["dataset"] == "sklearn:iris" and iris["simulator"] is None


def test_a_user_folder_adds_its_declarations(make_client, tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "houses.toml").write_text(HOUSES)
    (folder / "notes.txt").write_text("not a declaration")
    client = make_client(models_dir=folder, family="delay")
    models = {m["name"]: m for m in client.get("/models/declared").json()}
    assert list(models) == ["bike_traffic", "classification", "delay", "iris", "houses"]
    assert [name for name, m in models.items() if m["served"]] == ["delay"]

    houses = models["houses"]
    assert houses["builtin"] is False and houses["served"] is False
    assert houses["source"] == str(folder / "houses.toml")
    garden = houses["features"][2]
    assert garden["type"] == "boolean" and garden["optional"] is True
    assert garden["default"] is False
    # The task's defaults filled in by the loader: RMSE gate, 0.2 holdout.
    assert houses["gate"]["metric"] == "rmse" and houses["gate"]["direction"] == "lower"
    assert houses["fallback"] == {"kind": "formula", "value": "size * 2", "confidence": 0.5}


def test_a_malformed_declaration_stops_the_start_naming_file_and_field(make_client, tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    bad = folder / "houses.toml"
    bad.write_text(HOUSES.replace('type = "category"', 'type = "categorical"'))
    with pytest.raises(DeclarationError) as caught:
        make_client(models_dir=folder)
    message = str(caught.value)
    assert f"{bad}: features[1].type: 'categorical' is not one of" in message


def test_a_missing_models_dir_stops_the_start(make_client, tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DeclarationError, match="is not a folder of declarations"):
        make_client(models_dir=missing)


def test_settings_blank_models_dir_and_prefixes():
    from ia_continu.config import Settings

    settings = Settings(models_dir="  ", allowed_estimator_prefixes=" xgboost, ,lightgbm.")
    assert settings.models_dir is None  # blank (docker-compose's ${VAR:-}) = built-ins only
    assert settings.estimator_prefixes == ("xgboost", "lightgbm.")
