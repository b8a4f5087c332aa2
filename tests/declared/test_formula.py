"""The fallback formula: right answers, vectorised, and no way out of arithmetic."""

from __future__ import annotations

import numpy as np
import pytest

from ia_continu.declared.formula import FormulaError, compile_formula

NAMES = ("distance_km", "hour", "feature1", "feature2")
COLS = {
    "distance_km": np.array([0.0, 10.0, 42.5]),
    "hour": np.array([8.0, 12.0, 23.0]),
    "feature1": np.array([1.0, -1.0, 0.5]),
    "feature2": np.array([0.5, 2.0, 0.5]),
}


def ev(text: str) -> list[float]:
    return compile_formula(text, NAMES).evaluate(COLS, 3).tolist()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("distance_km * 0.5", [0.0, 5.0, 21.25]),
        ("feature1 >= feature2", [1.0, 0.0, 1.0]),
        ("-distance_km + 2 * (hour - 1) / 2", [7.0, 1.0, -20.5]),
        ("distance_km ** 2", [0.0, 100.0, 1806.25]),
        ("hour ** -1 * 24", [3.0, 2.0, 24 / 23]),
        ("7 <= hour <= 12", [1.0, 1.0, 0.0]),
        ("hour != 12", [1.0, 0.0, 1.0]),
        ("(hour >= 7) * 4 + 1", [5.0, 5.0, 5.0]),
        ("hour > 10 and distance_km > 5", [0.0, 1.0, 1.0]),
        ("hour < 10 or distance_km > 40", [1.0, 0.0, 1.0]),
        ("not hour > 10", [1.0, 0.0, 0.0]),
        ("min(hour, 10)", [8.0, 10.0, 10.0]),
        ("max(hour, distance_km, 20)", [20.0, 20.0, 42.5]),
        ("abs(feature1 - feature2)", [0.5, 3.0, 0.0]),
        ("round(distance_km / 3)", [0.0, 3.0, 14.0]),
        ("round(distance_km / 3, 2)", [0.0, 3.33, 14.17]),
        ("clip(distance_km, 1, 20)", [1.0, 10.0, 20.0]),
        ("3.5", [3.5, 3.5, 3.5]),
    ],
)
def test_evaluates_over_columns(text: str, expected: list[float]) -> None:
    assert ev(text) == pytest.approx(expected)


def test_names_used_and_result_is_a_fresh_float_array() -> None:
    formula = compile_formula("distance_km * 0.5 + 1", NAMES)
    assert formula.names == frozenset({"distance_km"})
    out = formula.evaluate(COLS, 3)
    assert out.dtype == np.float64 and out.shape == (3,)
    out[0] = 99.0
    assert COLS["distance_km"][0] == 0.0


def test_division_by_zero_gives_inf_not_an_exception() -> None:
    assert ev("hour / (distance_km * 0)")[0] == float("inf")


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("__import__('os')", "calls to '__import__' are not allowed"),
        ("open('/etc/passwd')", "calls to 'open' are not allowed"),
        ("hour.real", "attribute access (x.y) is not allowed"),
        ("().__class__.__bases__", "attribute access"),
        ("COLS['hour']", "subscripts"),
        ("(lambda: 1)()", "lambda is not allowed"),
        ("'text'", "text ('text') is not allowed"),
        ("hour if hour > 3 else 0", "conditional expressions"),
        ("[h for h in hour]", "comprehensions"),
        ("(hour := 3)", "assignment"),
        ("eval('1')", "calls to 'eval' are not allowed"),
        ("max(hour, key=abs)", "takes no keyword arguments"),
        ("hour ** hour", "the exponent of ** must be a number"),
        ("hour ** 10", "the exponent 10 is too large"),
        ("9 ** 9 ** 9", "must be a number"),
        ("hour // 2", "the operator '//' is not allowed"),
        ("hour % 2", "the operator '%' is not allowed"),
        ("hour in (1, 2)", "the comparison 'in' is not allowed"),
        ("True", "bool (True) is not allowed"),
        ("1j", "complex (1j) is not allowed"),
        ("speed * 2", "'speed' is not a numeric feature"),
        ("abs", "'abs' is a function"),
        ("abs(1, 2)", "abs() takes 1 arguments, got 2"),
        ("hour +", "not a valid expression"),
        ("", "the formula is empty"),
        ("1 + " * 200 + "1", "longer than 500 characters"),
    ],
)
def test_refuses_everything_else(text: str, why: str) -> None:
    with pytest.raises(FormulaError) as caught:
        compile_formula(text, NAMES)
    assert why in str(caught.value)
