"""Request rows and frames to the validated float matrix; errors name the row and feature."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ia_continu.declared import Declaration, load_declarations
from ia_continu.declared.features import FeatureEncoder
from ia_continu.errors import InvalidActual, InvalidFeatures, InvalidInput
from tests.declared.helpers import mixed

Write = Callable[[str, str], Path]


@pytest.fixture
def houses(write: Write) -> Declaration:
    return load_declarations(write("h.toml", mixed()).parent, include_builtin=False)["houses"]


@pytest.fixture
def enc(houses: Declaration) -> FeatureEncoder:
    return FeatureEncoder(houses)


def message(enc: FeatureEncoder, rows: list) -> str:  # type: ignore[type-arg]
    with pytest.raises(InvalidFeatures) as caught:
        enc.rows(rows)
    assert isinstance(caught.value, InvalidInput)
    return str(caught.value)


def test_by_name_and_by_position_give_the_same_matrix(enc: FeatureEncoder) -> None:
    by_name = enc.rows(
        [
            {"size": 50, "rooms": 3, "city": "lyon", "garden": True},
            {"city": "lille", "rooms": 2.0, "size": 12.5},  # garden optional: default false
        ]
    )
    by_position = enc.rows([[50, 3, "lyon", True], [12.5, 2, "lille"]])
    expected = np.array([[50.0, 3.0, 1.0, 1.0], [12.5, 2.0, 2.0, 0.0]])
    assert by_name.dtype == np.float64
    np.testing.assert_array_equal(by_name, expected)
    np.testing.assert_array_equal(by_position, expected)
    np.testing.assert_array_equal(enc.row({"size": 1, "rooms": 1, "city": "paris"}), [[1, 1, 0, 0]])


def test_mixed_row_shapes_in_one_batch(enc: FeatureEncoder) -> None:
    X = enc.rows([{"size": 1, "rooms": 1, "city": "paris"}, (2, 2, "lyon", 1)])
    np.testing.assert_array_equal(X, [[1, 1, 0, 0], [2, 2, 1, 1]])


def test_errors_name_the_row_and_the_feature(enc: FeatureEncoder) -> None:
    text = message(
        enc,
        [
            {"size": 50, "rooms": 3, "city": "lyon"},
            {"size": 150, "rooms": 2.5, "city": "nice", "garden": "yes"},
            {"size": "big", "rooms": 0, "city": "paris", "colour": 1},
            {"rooms": 3, "city": "paris"},
        ],
    )
    assert text == (
        "row 1: size: 150 is above the maximum 100; "
        "row 1: rooms: 2.5 is not a whole number; "
        "row 1: city: 'nice' is not one of 'paris', 'lyon', 'lille'; "
        "row 1: garden: 'yes' is not true/false (or 1/0); "
        "row 2: unknown feature 'colour' (features: size, rooms, city, garden); "
        "row 2: size: 'big' is text, not a number; "
        "row 2: rooms: 0 is below the minimum 1; "
        "row 3: size: is missing"
    )


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ([1, 2], "row 0: expected 3 to 4 values in the order size, rooms, city, garden, got 2"),
        ([1, 2, "paris", 0, 9], "row 0: expected 3 to 4 values"),
        ("size=1", "row 0: expected an object by feature name or a list"),
        ({"size": True, "rooms": 1, "city": "paris"}, "row 0: size: True is bool, not a number"),
        (
            {"size": float("inf"), "rooms": 1, "city": "paris"},
            "row 0: size: inf is not a finite number",
        ),
        ({"size": None, "rooms": 1, "city": "paris"}, "row 0: size: is missing"),
        (
            {"size": 1, "rooms": 1, "city": 0},
            "row 0: city: 0 is not one of 'paris', 'lyon', 'lille'",
        ),
    ],
)
def test_single_row_errors(enc: FeatureEncoder, row: object, expected: str) -> None:
    assert message(enc, [row]).startswith(expected)


def test_not_a_list_of_rows(enc: FeatureEncoder) -> None:
    assert message(enc, []) == "expected a non-empty list of rows"
    with pytest.raises(InvalidFeatures):
        enc.rows({"size": 1})  # type: ignore[arg-type]


def test_at_most_ten_problems_are_spelled_out(enc: FeatureEncoder) -> None:
    text = message(enc, [{"size": -1, "rooms": 1, "city": "paris"}] * 25)
    assert text.count("is below the minimum 0") == 10 and text.endswith("... and 15 more")


def test_numeric_categories_and_booleans_as_numbers() -> None:
    delay = load_declarations()["delay"]
    enc = FeatureEncoder(delay)
    X = enc.rows([[10.0, 8, 0, 2, 0.5], [10.0, 8.0, 6, 1.0, 1]])
    np.testing.assert_array_equal(X[:, 3], [2.0, 1.0])
    text = message(enc, [[10.0, 8, 0, True, 0.5], [-1, 24, 7, 3, 1.5]])
    assert text == (
        "row 0: weather: True is not one of 0, 1, 2; "
        "row 1: distance_km: -1 is below the minimum 0; "
        "row 1: hour: 24 is above the maximum 23; "
        "row 1: weekday: 7 is above the maximum 6; "
        "row 1: weather: 3 is not one of 0, 1, 2; "
        "row 1: traffic: 1.5 is above the maximum 1"
    )
    assert enc.numeric_columns(X)["weather"].tolist() == [2.0, 1.0]


def test_frames_fill_optional_columns_and_report_rows(enc: FeatureEncoder) -> None:
    frame = pd.DataFrame(
        {"size": [10.0, 20.0], "rooms": [1, 2], "city": ["paris", "lille"], "price": [1, 2]}
    )
    np.testing.assert_array_equal(enc.frame(frame), [[10, 1, 0, 0], [20, 2, 2, 0]])
    frame["garden"] = [np.nan, True]  # NaN in an optional column: its default
    np.testing.assert_array_equal(enc.frame(frame)[:, 3], [0.0, 1.0])
    frame.loc[1, "size"] = np.nan
    with pytest.raises(InvalidFeatures, match=r"^row 1: size: is missing$"):
        enc.frame(frame)
    with pytest.raises(InvalidFeatures, match="missing column rooms"):
        enc.frame(frame.drop(columns="rooms"))


def test_decode_gives_declared_values_back(enc: FeatureEncoder) -> None:
    rows = [{"size": 50.5, "rooms": 3, "city": "lyon", "garden": True}]
    back = enc.decode(enc.rows(rows))
    assert back.to_dict("records") == rows


def test_targets(enc: FeatureEncoder) -> None:
    assert enc.target([1, 2.5]).tolist() == [1.0, 2.5]
    with pytest.raises(InvalidActual, match=r"^row 1: target 'price': 'x' is not a finite number"):
        enc.target([1, "x"])
    iris = FeatureEncoder(load_declarations()["iris"])
    assert iris.target(["setosa", "virginica"]).tolist() == ["setosa", "virginica"]
    with pytest.raises(InvalidActual, match="row 0: target 'species': 'rose' is not one of"):
        iris.target(["rose"])
    binary = FeatureEncoder(load_declarations()["classification"])
    assert binary.target(np.array([0.0, 1.0])).tolist() == [0, 1]
    with pytest.raises(InvalidActual, match="row 0: target 'target': True is not one of"):
        binary.target([True])


def test_small_and_large_batches_report_alike(enc: FeatureEncoder) -> None:
    # Up to 16 rows are checked value by value, more with numpy: same values, same messages.
    bad = [
        {"size": 1.5e6, "rooms": 0.5, "city": "nice", "garden": 2},
        {"size": float("nan"), "rooms": "3", "city": "lyon", "garden": None},
        {"size": -0.25, "rooms": 9, "city": "paris", "garden": np.bool_(True)},
        {"size": np.float64(5.0), "rooms": np.int64(2), "city": "lille", "garden": 1.0},
    ]
    valid = {"size": 1, "rooms": 1, "city": "paris"}
    small = message(enc, bad)
    assert small == message(enc, [*bad, *[valid] * 30])
    assert small == (
        "row 0: size: 1.5e+06 is above the maximum 100; "
        "row 0: rooms: 0.5 is not a whole number; "
        "row 0: city: 'nice' is not one of 'paris', 'lyon', 'lille'; "
        "row 0: garden: 2 is not true/false (or 1/0); "
        "row 1: size: is missing; "
        "row 1: rooms: '3' is text, not a number; "
        "row 2: size: -0.25 is below the minimum 0; "
        "row 2: rooms: 9 is above the maximum 8"
    )
    good = [bad[3], valid]
    np.testing.assert_array_equal(enc.rows(good), enc.rows(good * 20)[:2])
    np.testing.assert_array_equal(enc.rows(good), [[5, 2, 2, 1], [1, 1, 0, 0]])


def test_regression_target_bounds() -> None:
    delay = FeatureEncoder(load_declarations()["delay"])
    assert delay.target([-5.0, 12.5]).tolist() == [-5.0, 12.5]
    with pytest.raises(InvalidActual, match=r"^row 1: target 'delay_minutes': 20000 is above"):
        delay.target([1.0, 20000])
