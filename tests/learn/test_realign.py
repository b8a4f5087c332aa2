"""Stored feature rows read back by name in the model's current feature order: reordered,
gained (optional: its default; required: the rows are left out, never misread), dropped."""

from __future__ import annotations

import textwrap

import numpy as np

from ia_continu.declared.family import DeclaredFamily
from ia_continu.declared.load import load_declarations
from ia_continu.learn.realign import missing_features, realign, realign_mixed
from ia_continu.store.engine import session_scope
from ia_continu.store.schemas import schema_id

FEATURE = """
[[features]]
name = "{name}"
type = "{type}"
{extra}
"""
HEAD = """
name = "shop"
task = "regression"
tolerance = 1.0

[target]
name = "sales"

[estimator]
class = "sklearn.linear_model.Ridge"

[gate]
metric = "rmse"

[fallback]
strategy = "mean"
"""
SIZE = ("size", "number", "min = 0\nmax = 100")
CITY = ("city", "category", 'values = ["paris", "lyon"]')
OPEN = ("open", "boolean", "optional = true\ndefault = true")
STAFF = ("staff", "integer", "min = 0\nmax = 50")


def family(tmp_path, *features) -> DeclaredFamily:
    """A DeclaredFamily 'shop' with these features, in this order."""
    folder = tmp_path / f"models-{'-'.join(f[0] for f in features)}"
    folder.mkdir()
    body = "".join(FEATURE.format(name=n, type=t, extra=e) for n, t, e in features)
    (folder / "shop.toml").write_text(textwrap.dedent(HEAD + body), encoding="utf-8")
    return DeclaredFamily(load_declarations(folder)["shop"])


def test_same_order_reads_as_stored(tmp_path):
    shop = family(tmp_path, SIZE, CITY)
    X, kept = realign([[1.0, 0.0], [2.0, 1.0]], ["size", "city"], shop)
    assert X.tolist() == [[1.0, 0.0], [2.0, 1.0]] and kept.tolist() == [True, True]
    X, kept = realign([[1.0, 0.0]], None, shop)  # NULL schema: the current order
    assert X.tolist() == [[1.0, 0.0]] and kept.all()


def test_reordered_features_are_read_by_name(tmp_path):
    shop = family(tmp_path, CITY, SIZE)  # declared the other way round since
    X, kept = realign([[1.0, 0.0], [2.0, 1.0]], ["size", "city"], shop)
    assert X.tolist() == [[0.0, 1.0], [1.0, 2.0]] and kept.all()


def test_a_new_optional_feature_takes_its_declared_default(tmp_path):
    shop = family(tmp_path, SIZE, OPEN, CITY)
    X, kept = realign([[5.0, 1.0]], ["size", "city"], shop)
    assert X.tolist() == [[5.0, 1.0, 1.0]] and kept.all()  # open = true, encoded 1.0
    assert missing_features(["size", "city"], shop) == []


def test_a_new_required_feature_makes_old_rows_unusable(tmp_path):
    shop = family(tmp_path, SIZE, CITY, STAFF)
    X, kept = realign([[5.0, 1.0], [6.0, 0.0]], ["size", "city"], shop)
    assert X.shape == (0, 3) and not kept.any()
    assert missing_features(["size", "city"], shop) == ["staff"]


def test_a_dropped_feature_is_ignored_and_a_row_of_the_wrong_length_left_out(tmp_path):
    shop = family(tmp_path, CITY)
    X, kept = realign([[5.0, 1.0], [6.0]], ["size", "city"], shop)
    assert X.tolist() == [[1.0]] and kept.tolist() == [True, False]


def test_rows_under_several_schemas_are_each_realigned(engine, tmp_path):
    shop = family(tmp_path, CITY, SIZE, OPEN)
    with session_scope(engine) as session:
        old = schema_id(session, "shop", ["size", "city"])
        now = schema_id(session, "shop", ["city", "size", "open"])
        without_city = schema_id(session, "shop", ["size"])
        got = realign_mixed(
            session,
            [[1.0, 0.0], [1.0, 2.0, 0.0], [3.0], [4.0, 1.0]],
            [old, now, without_city, None],
            shop,
        )
    # NULL is today's order; the row without the required "city" is left out, and said why.
    assert got.kept.tolist() == [True, True, False, False]
    assert got.X.tolist() == [[0.0, 1.0, 1.0], [1.0, 2.0, 0.0]]
    assert got.missing == ["city"]


def test_realign_of_no_rows_is_empty(tmp_path):
    X, kept = realign([], ["size", "city"], family(tmp_path, SIZE, CITY))
    assert X.shape == (0, 2) and kept.shape == (0,) and np.asarray(kept).dtype == bool


def test_labelled_predictions_become_a_dataset_in_the_current_order(engine, tmp_path):
    from ia_continu.learn.datasets import load_dataset
    from ia_continu.store.tables import Dataset, FeatureSchema
    from ia_continu.truth.sources import snapshot_labelled
    from tests.factories import insert_rows, prediction_rows

    shop = family(tmp_path, CITY, SIZE)
    with session_scope(engine) as session:
        old = schema_id(session, "shop", ["size", "city"])
        gone = schema_id(session, "shop", ["size"])  # lacks the required "city"
    rows = prediction_rows("shop", 3, rng=np.random.default_rng(0))
    for row, features, sid, actual in zip(
        rows, [[5.0, 1.0], [2.0], [0.0, 7.0]], [old, gone, None], [10.0, 20.0, 30.0], strict=True
    ):
        row.update(features=features, schema_id=sid, actual=actual)
    insert_rows(engine, rows)
    with session_scope(engine) as session:
        gid = snapshot_labelled(session, shop, min_rows=2)
        assert gid is not None
        data = load_dataset(session, shop, gid)
        dataset = session.get(Dataset, gid)
        assert dataset is not None and dataset.source == "predictions"
        assert session.get(FeatureSchema, dataset.schema_id).names == ["city", "size"]
    # Newest first: the NULL-schema row (today's order), then the one logged as size, city.
    assert data.X.tolist() == [[0.0, 7.0], [1.0, 5.0]] and data.y.tolist() == [30.0, 10.0]
