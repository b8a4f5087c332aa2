"""Rows of a float matrix as the JSON text ``json.dumps`` writes for each, made in bulk.

The prediction log stores each row's features as ``json.dumps(row)`` (``[0.5, 1.25]``). Made
one row at a time that is ~6 µs a row, most of a 10,000-row batch's log cost in the writer
thread (which shares the core with the requests). msgspec writes the whole matrix in one call;
its numbers are the same shortest round-trip digits as Python's ``repr`` wherever Python does
not switch to an exponent (magnitudes from 1e-4 to 1e16, and zero), so rows inside that range
take msgspec's text with ``json.dumps``' separators, and the others ``json.dumps`` itself: the
stored text is the same, byte for byte.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence

import msgspec
import numpy as np

_ENCODER = msgspec.json.Encoder()
# Below this many rows the bulk path's fixed numpy cost is more than it saves (measured:
# one 5-feature row 8.5 µs one by one, 15 µs in bulk; four rows 36 against 18 µs).
_BULK_FROM = 3


def rows_as_json(X: np.ndarray) -> list[str]:
    """``[json.dumps(row) for row in X.tolist()]`` for a 2-d float matrix of finite values."""
    if X.ndim != 2 or X.dtype != np.float64 or len(X) < _BULK_FROM or not X.shape[1]:
        return [json.dumps(row) for row in X.tolist()]
    size = np.abs(X)
    plain = (((size >= 1e-4) & (size < 1e16)) | (X == 0)).all(axis=1)
    rows = X.tolist()
    text = _ENCODER.encode(rows).decode()
    # '[[a,b],[c,d]]' -> 'a,b', 'c,d': no number's text holds a bracket or a comma.
    inner = text[2:-2].split("],[")
    return [
        f"[{row.replace(',', ', ')}]" if ok else json.dumps(values)
        for row, ok, values in zip(inner, plain.tolist(), rows, strict=True)
    ]


def row_json(values: list[float]) -> str:
    """``json.dumps(values)`` of one row of floats (a one-row call's features), the same text.

    msgspec writes it in ~0.3 us against ~1 us for ``repr`` of each float (5 features). The
    two differ only where Python writes an exponent (magnitudes under 1e-4 or from 1e16):
    msgspec then writes ``0.0000...`` or ``1e16`` (``1e+16`` in Python), and ``null`` for a
    NaN. A text holding none of those is ``json.dumps``' text but for its separators; any
    other goes to ``json.dumps`` itself (also when a digit run merely looks like one, as in
    ``10.00001``: slower, never different)."""
    text = _ENCODER.encode(values).decode()
    if "e" in text or "n" in text or "0.0000" in text:
        return json.dumps(values)
    return text.replace(",", ", ")


# A key msgspec and json.dumps write alike, and that cannot be mistaken for the structure
# around it: printable ASCII (json.dumps escapes the rest) without quote, backslash or brace.
_PLAIN_KEY = re.compile(r"^[ !#-\[\]-z|~]*$")


def factors_as_json(factors: Sequence[dict[str, float] | None]) -> list[str | None]:
    """``[None if f is None else json.dumps(f) for f in factors]``, in bulk where the text is
    the same byte for byte: contributing factors (a few names -> rounded contributions) are
    the delay model's log cost a row, ~2.5 us each through ``json.dumps`` against ~0.3 us
    here. Keys must be plain (``_PLAIN_KEY``) and values floats in the range where msgspec
    and ``repr`` agree (see the module docstring); otherwise ``json.dumps`` writes the lot."""
    present = [f for f in factors if f is not None]
    if len(present) < _BULK_FROM:
        return [None if f is None else json.dumps(f) for f in factors]
    keys = {k for f in present for k in f}
    values = [v for f in present for v in f.values()]
    plain = all(type(k) is str and _PLAIN_KEY.match(k) for k in keys) and all(
        type(v) is float for v in values
    )
    if plain and values:
        numbers = np.array(values, dtype=np.float64)
        size = np.abs(numbers)
        plain = bool((((size >= 1e-4) & (size < 1e16)) | (numbers == 0)).all())
    if not plain:
        return [None if f is None else json.dumps(f) for f in factors]
    # '[{"a":1.5,"b":-2.0},{}]' -> '{"a": 1.5, "b": -2.0}', '{}': no key or number holds a
    # brace, a quote or a backslash, so '},{', '":' and ',"' occur only as structure.
    inner = _ENCODER.encode(present).decode()[2:-2].split("},{")
    texts = iter(["{" + t.replace('":', '": ').replace(',"', ', "') + "}" for t in inner])
    return [None if f is None else next(texts) for f in factors]


_KNOWN_PLAIN: set[str] = set()  # factor names seen to pass _PLAIN_KEY (a model's features)


def factor_json(factors: dict[str, float]) -> str:
    """``json.dumps(factors)`` of one row's contributing factors (a one-row call), the same
    text: json.dumps writes a finite float as its ``repr`` and a plain key as it is, so for
    those an f-string a pair is all it does, at ~2.5x less than the encoder's generic path.
    Anything else (another type, NaN, a key to escape) goes to ``json.dumps`` itself."""
    parts = []
    for key, value in factors.items():
        if type(value) is not float or not math.isfinite(value):
            return json.dumps(factors)
        if key not in _KNOWN_PLAIN:
            if type(key) is not str or not _PLAIN_KEY.match(key):
                return json.dumps(factors)
            if len(_KNOWN_PLAIN) < 10_000:
                _KNOWN_PLAIN.add(key)
        parts.append(f'"{key}": {value!r}')
    return "{" + ", ".join(parts) + "}"
