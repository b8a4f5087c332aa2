"""Request rows and dataset frames → one validated float64 matrix, in declared feature order.

Representation: a 2-D ``float64`` numpy array, one column per declared feature, where
number/integer features keep their value, booleans are 0.0/1.0 and a category is the
*index* of its value in the declared ``values`` list (its code). Why not a pandas DataFrame
with declared dtypes, the natural input of a name-based ColumnTransformer? Measured with
``bench/onnx_scoring.py`` on this machine (one row; scikit-learn 1.9.1, pandas 2.3.3):

====================================================  ===============
dict → float row (this module, validation included)   5-8 µs
dict → one-row DataFrame (no validation yet)           50-120 µs
``Pipeline.predict``, LogisticRegression, float row   ~0.45-0.5 ms
the same keyed by column names, one-row DataFrame     ~1.2 ms
``Pipeline.predict``, 100-tree forest, float row      ~5.1 ms
the same keyed by column names, one-row DataFrame     ~6.6 ms
onnxruntime, float row (one double tensor)            9-20 µs
====================================================  ===============

So the matrix is the cheaper input everywhere, and it makes the ONNX input spec trivial:
one ``double[N, n_features]`` tensor named ``X`` whatever the mix of types, instead of one
input per column with strings for categories. The category→code step happens here, at the
edge, where values are validated anyway. The automatic preprocessing one-hot encodes codes
with the full declared list of categories (a category absent from the training rows still
has its column), so models never read a code as an order; declared pipeline steps receive
the code itself (for ``values = [0, 1, 2]``, the value).

Every problem names the row (0-based) and the feature and they are all reported at once (up
to :data:`MAX_REPORTED`), raised as :class:`~ia_continu.errors.InvalidFeatures`; target
problems raise :class:`~ia_continu.errors.InvalidActual`. A missing value (absent key,
``None``, NaN in a frame) takes the feature's default when it is optional.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ia_continu.declared.schema import Declaration, Feature
from ia_continu.errors import InvalidActual, InvalidFeatures

if TYPE_CHECKING:  # frames are training's and reports': serving encodes JSON rows
    import pandas as pd

MAX_REPORTED = 10
SMALL_BATCH = 16  # rows checked value by value (see FeatureEncoder._encode)


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()
_FAST_NUMBERS = {int, float}


def _is_missing(value: Any) -> bool:
    return value is MISSING or value is None or (isinstance(value, float) and math.isnan(value))


def _fmt(value: Any) -> str:
    if isinstance(value, float | np.floating):
        return f"{float(value):g}"
    return repr(value)


def _is_real(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )


class _Problems:
    def __init__(self) -> None:
        self.items: list[tuple[int, int, str]] = []  # (row, feature index, message)

    def add(self, row: int, column: int, message: str) -> None:
        self.items.append((row, column, message))

    def raise_if_any(self, names: Sequence[str], error: type[Exception]) -> None:
        if not self.items:
            return
        self.items.sort(key=lambda item: (item[0], item[1]))
        lines = [
            f"row {row}: {names[col]}: {msg}" if col >= 0 else f"row {row}: {msg}"
            for row, col, msg in self.items[:MAX_REPORTED]
        ]
        if len(self.items) > MAX_REPORTED:
            lines.append(f"... and {len(self.items) - MAX_REPORTED} more")
        raise error("; ".join(lines))


class FeatureEncoder:
    """Validates and encodes a declaration's features; one per declaration, reused."""

    def __init__(self, declaration: Declaration) -> None:
        self.declaration = declaration
        self.features: tuple[Feature, ...] = tuple(declaration.features)
        self.names: tuple[str, ...] = declaration.feature_names
        self._index = {name: i for i, name in enumerate(self.names)}
        self._codes: list[dict[Any, int] | None] = [
            {v: i for i, v in enumerate(f.values or ())} if f.type == "category" else None
            for f in self.features
        ]
        self._defaults = [self._encode_default(f, i) for i, f in enumerate(self.features)]
        required = [i for i, f in enumerate(self.features) if not f.optional]
        # Positional rows may leave out trailing optional features.
        self.min_positional = (required[-1] + 1) if required else 0
        self._order = ", ".join(self.names)

    @property
    def n_features(self) -> int:
        return len(self.names)

    def _encode_default(self, f: Feature, i: int) -> float | None:
        if not f.optional:
            return None
        if f.type == "category":
            return float((self._codes[i] or {})[f.default])
        return float(f.default)

    def default_code(self, name: str) -> float | None:
        """The encoded value of feature ``name`` when a row lacks it (None: it is required,
        or not declared)."""
        i = self._index.get(name)
        return None if i is None else self._defaults[i]

    # --- requests ---------------------------------------------------------------------
    def rows(self, rows: Sequence[Mapping[str, Any] | Sequence[Any]]) -> np.ndarray:
        """Request rows, each a dict by feature name or a list in declared order."""
        if isinstance(rows, str | bytes | Mapping) or len(rows) == 0:
            raise InvalidFeatures("expected a non-empty list of rows")
        problems = _Problems()
        n = len(rows)
        if all(isinstance(r, Mapping) for r in rows):
            self._check_names(rows, problems)  # type: ignore[arg-type]
            columns = [[r.get(name, MISSING) for r in rows] for name in self.names]  # type: ignore[union-attr]
        elif all(isinstance(r, list | tuple) and len(r) == self.n_features for r in rows):
            columns = [list(c) for c in zip(*rows, strict=True)]
        else:
            columns = [[MISSING] * n for _ in self.names]
            for r, row in enumerate(rows):
                self._spread(r, row, columns, problems)
        X = self._encode(columns, n, problems)
        problems.raise_if_any(self.names, InvalidFeatures)
        return X

    def row(self, row: Mapping[str, Any] | Sequence[Any]) -> np.ndarray:
        """One request row as a (1, n_features) matrix."""
        return self.rows([row])

    def _check_names(self, rows: Sequence[Mapping[str, Any]], problems: _Problems) -> None:
        known = self._index
        for r, row in enumerate(rows):
            if len(row) <= len(known) and all(k in known for k in row):
                continue
            for key in row:
                if key not in known:
                    problems.add(r, -1, f"unknown feature {key!r} (features: {self._order})")

    def _spread(self, r: int, row: Any, columns: list[list[Any]], problems: _Problems) -> None:
        if isinstance(row, Mapping):
            for key, value in row.items():
                j = self._index.get(key)
                if j is None:
                    problems.add(r, -1, f"unknown feature {key!r} (features: {self._order})")
                else:
                    columns[j][r] = value
        elif isinstance(row, list | tuple):
            if not self.min_positional <= len(row) <= self.n_features:
                want = (
                    str(self.n_features)
                    if self.min_positional == self.n_features
                    else f"{self.min_positional} to {self.n_features}"
                )
                problems.add(
                    r, -1, f"expected {want} values in the order {self._order}, got {len(row)}"
                )
                return
            for j, value in enumerate(row):
                columns[j][r] = value
        else:
            problems.add(
                r, -1, f"expected an object by feature name or a list in the order {self._order}"
            )

    # --- datasets ---------------------------------------------------------------------
    def frame(self, frame: pd.DataFrame) -> np.ndarray:
        """A dataset frame with one column per feature (by name; other columns ignored)."""
        absent = [f.name for f in self.features if f.name not in frame.columns and not f.optional]
        if absent:
            raise InvalidFeatures(
                f"missing column{'s' if len(absent) > 1 else ''} {', '.join(absent)} "
                f"(features: {self._order})"
            )
        n = len(frame)
        if n == 0:
            raise InvalidFeatures("the frame has no rows")
        columns = [
            frame[name].tolist() if name in frame.columns else [MISSING] * n for name in self.names
        ]
        problems = _Problems()
        X = self._encode(columns, n, problems)
        problems.raise_if_any(self.names, InvalidFeatures)
        return X

    # --- encoding ---------------------------------------------------------------------
    # Small batches (a request is usually one row) go value by value in plain Python: a
    # dozen numpy calls per column cost more than the checks themselves. Large batches and
    # frames check number columns with numpy. Both give the same value and the same single
    # message per cell (the first problem found), which the tests hold them to.

    def _encode(self, columns: list[list[Any]], n: int, problems: _Problems) -> np.ndarray:
        if n <= SMALL_BATCH:
            out = [[0.0] * self.n_features for _ in range(n)]
            for j, values in enumerate(columns):
                check = self._check_value
                for r, v in enumerate(values):
                    result = check(j, v)
                    if isinstance(result, str):
                        problems.add(r, j, result)
                    else:
                        out[r][j] = result
            return np.array(out, dtype=np.float64)
        X = np.empty((n, self.n_features), dtype=np.float64)
        for j, values in enumerate(columns):
            if self.features[j].type in ("number", "integer"):
                X[:, j] = self._number_column(j, values, problems)
                continue
            for r, v in enumerate(values):
                result = self._check_value(j, v)
                if isinstance(result, str):
                    problems.add(r, j, result)
                else:
                    X[r, j] = result
        return X

    def _check_value(self, j: int, v: Any) -> float | str:
        """The encoded value, or the message saying what is wrong with it."""
        f = self.features[j]
        if _is_missing(v):
            default = self._defaults[j]
            return "is missing" if default is None else default
        if f.type == "category":
            # bool is an int in Python (True == 1): a category of 0/1/2 must not take true.
            # A list or an object (JSON) is no category either, and cannot be looked up.
            refused = isinstance(v, bool | np.bool_ | list | dict)
            code = None if refused else (self._codes[j] or {}).get(v)
            if code is None:
                return f"{_fmt(v)} is not one of {', '.join(map(repr, f.values or ()))}"
            return float(code)
        if f.type == "boolean":
            if v is True or v is False or isinstance(v, np.bool_):
                return float(v)
            if _is_real(v) and v in (0, 1):
                return float(v)
            return f"{_fmt(v)} is not true/false (or 1/0)"
        if not _is_real(v):
            return (
                f"{_fmt(v)} is {'text' if isinstance(v, str) else type(v).__name__}, not a number"
            )
        x = float(v)
        if not math.isfinite(x):
            return f"{_fmt(x)} is not a finite number"
        if f.type == "integer" and not x.is_integer():
            return f"{_fmt(x)} is not a whole number"
        if f.min is not None and x < f.min:
            return f"{_fmt(x)} is below the minimum {f.min:g}"
        if f.max is not None and x > f.max:
            return f"{_fmt(x)} is above the maximum {f.max:g}"
        return x

    def _number_column(self, j: int, values: list[Any], problems: _Problems) -> np.ndarray:
        f = self.features[j]
        if set(map(type, values)) <= _FAST_NUMBERS:
            col = np.array(values, dtype=np.float64)
            bad = np.zeros(len(values), dtype=bool)
        else:
            col = np.zeros(len(values), dtype=np.float64)
            bad = np.zeros(len(values), dtype=bool)
            for r, v in enumerate(values):
                if _is_missing(v):
                    col[r] = np.nan
                elif _is_real(v):
                    col[r] = float(v)
                else:
                    bad[r] = True
                    problems.add(r, j, str(self._check_value(j, v)))
        missing = np.isnan(col) & ~bad
        if missing.any():
            default = self._defaults[j]
            if default is not None:
                col[missing] = default
            else:
                for r in np.flatnonzero(missing).tolist():
                    problems.add(r, j, "is missing")
        pending = ~bad & ~missing
        rules: list[tuple[np.ndarray, str]] = [(~np.isfinite(col), "is not a finite number")]
        if f.type == "integer":
            rules.append((col != np.floor(col), "is not a whole number"))
        if f.min is not None:
            rules.append((col < f.min, f"is below the minimum {f.min:g}"))
        if f.max is not None:
            rules.append((col > f.max, f"is above the maximum {f.max:g}"))
        for failed, why in rules:  # first failed rule only, as in _check_value
            hit = pending & failed
            for r in np.flatnonzero(hit).tolist():
                problems.add(r, j, f"{_fmt(col[r])} {why}")
            pending &= ~hit
        return col

    # --- targets ----------------------------------------------------------------------
    def target(self, y: Sequence[Any] | np.ndarray | pd.Series) -> np.ndarray:
        """Validated outcomes: class labels (as declared) or finite numbers."""
        # An array or a pandas Series (duck-typed: pandas is not imported to serve)
        values = y.tolist() if hasattr(y, "tolist") else list(y)
        d = self.declaration
        problems = _Problems()
        label = [f"target {d.target.name!r}"]
        if d.is_classifier:
            index = {c: i for i, c in enumerate(d.classes)}
            allowed = ", ".join(map(repr, d.classes))
            codes = np.zeros(len(values), dtype=np.int64)
            for r, v in enumerate(values):
                code = None if isinstance(v, bool | np.bool_) else index.get(v)
                if code is None:
                    problems.add(r, 0, f"{_fmt(v)} is not one of the classes {allowed}")
                else:
                    codes[r] = code
            problems.raise_if_any(label, InvalidActual)
            return self.class_array()[codes]
        out = np.zeros(len(values), dtype=np.float64)
        low, high = d.target.min, d.target.max
        for r, v in enumerate(values):
            if not (_is_real(v) and math.isfinite(v)):
                problems.add(r, 0, f"{_fmt(v)} is not a finite number")
            elif low is not None and v < low:
                problems.add(r, 0, f"{_fmt(v)} is below the minimum {low:g}")
            elif high is not None and v > high:
                problems.add(r, 0, f"{_fmt(v)} is above the maximum {high:g}")
            else:
                out[r] = float(v)
        problems.raise_if_any(label, InvalidActual)
        return out

    def class_array(self) -> np.ndarray:
        """The declared classes as an array (int64 or object of texts)."""
        classes = self.declaration.classes
        if all(isinstance(c, int) for c in classes):
            return np.array(classes, dtype=np.int64)
        out = np.empty(len(classes), dtype=object)
        out[:] = classes
        return out

    # --- back to values -----------------------------------------------------------------
    def decode(self, X: np.ndarray) -> pd.DataFrame:
        """The matrix as declared values (category texts, booleans...), e.g. for reports."""
        import pandas as pd

        data: dict[str, Any] = {}
        for j, f in enumerate(self.features):
            col = X[:, j]
            if f.type == "category":
                values = np.empty(len(f.values or ()), dtype=object)
                values[:] = f.values or ()
                data[f.name] = values[col.astype(np.int64)]
            elif f.type == "boolean":
                data[f.name] = col != 0
            elif f.type == "integer":
                data[f.name] = col.astype(np.int64)
            else:
                data[f.name] = col
        return pd.DataFrame(data)

    def numeric_columns(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """Columns a formula reads: numbers as they are, numeric categories as their value
        (not their code), booleans as 0/1. Text categories are left out."""
        out: dict[str, np.ndarray] = {}
        for j, f in enumerate(self.features):
            if f.type != "category":
                out[f.name] = X[:, j]
            elif f.numeric_values:
                out[f.name] = np.asarray(f.values, dtype=np.float64)[X[:, j].astype(np.int64)]
        return out
