"""A small valid declaration with every feature type, for tests to vary."""

from __future__ import annotations

# A small valid declaration with every feature type; tests replace parts of it.
MIXED = """
name = "{name}"
task = "regression"
tolerance = 2.0

[[features]]
name = "size"
type = "number"
min = 0
max = 100

[[features]]
name = "rooms"
type = "integer"
min = 1
max = 8

[[features]]
name = "city"
type = "category"
values = ["paris", "lyon", "lille"]

[[features]]
name = "garden"
type = "boolean"
optional = true
default = false

[target]
name = "price"

[estimator]
class = "{estimator}"
params = {params}

[gate]
metric = "rmse"

[fallback]
formula = "size * 0.1 + rooms"
"""


def mixed(
    name: str = "houses",
    estimator: str = "sklearn.linear_model.Ridge",
    params: str = "{}",
) -> str:
    return MIXED.format(name=name, estimator=estimator, params=params)
