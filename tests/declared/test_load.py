"""Loading declarations: the built-ins, and malformed files failing with file + field + why."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ia_continu.declared import DeclarationError, load_declarations
from ia_continu.declared.load import BUILTIN_DIR
from ia_continu.errors import IaContinuError
from ia_continu.vocab import Task
from tests.declared.helpers import mixed

Write = Callable[[str, str], Path]


def problems_of(folder: Path, **kwargs: object) -> list[str]:
    with pytest.raises(DeclarationError) as caught:
        load_declarations(folder, **kwargs)  # type: ignore[arg-type]
    return [str(p) for p in caught.value.problems]


def test_every_builtin_loads_with_the_families_features() -> None:
    found = load_declarations()
    assert set(found) == {"classification", "delay", "iris", "bike_traffic"}
    assert {p.stem for p in BUILTIN_DIR.glob("*.toml")} == set(found)
    assert found["classification"].feature_names == ("feature1", "feature2")
    delay = found["delay"]
    assert delay.feature_names == ("distance_km", "hour", "weekday", "weather", "traffic")
    hour = delay.features[1]
    assert (hour.type, hour.min, hour.max) == ("integer", 0, 23)
    assert delay.features[3].values == [0, 1, 2]
    assert delay.kind is Task.regression and delay.gate.metric == "rmse"
    assert delay.higher_is_better is False
    assert delay.tolerance == 3.0 and delay.risk_bands == {"medium": 5, "high": 15}
    assert found["iris"].kind is Task.classification and found["iris"].dataset == "sklearn:iris"
    assert found["bike_traffic"].estimator.params["n_estimators"] == 100
    assert delay.source == "ia_continu/declared/builtin/delay.toml"


def test_builtins_pass_the_estimator_checks_a_start_skips_for_them() -> None:
    """A start checks the built-ins without importing their classes (so that serving them
    needs no scikit-learn); this is where their classes and parameters are checked."""
    import tomllib

    from ia_continu.declared.imports import normalise_prefixes
    from ia_continu.declared.schema import parse_declaration, semantic_problems

    for path in sorted(BUILTIN_DIR.glob("*.toml")):
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        declaration = parse_declaration(data, source=path.name, prefixes=normalise_prefixes())
        assert semantic_problems(declaration, normalise_prefixes()) == [], path.name


def test_user_folder_adds_declarations(write: Write) -> None:
    path = write("houses.toml", mixed())
    found = load_declarations(path.parent)
    assert "houses" in found and "delay" in found
    assert found["houses"].source == str(path)
    assert found["houses"].feature_names == ("size", "rooms", "city", "garden")


def test_defaults_for_gate_and_fallback(write: Write) -> None:
    text = mixed().replace('[gate]\nmetric = "rmse"\n', "")
    text = text.replace('[fallback]\nformula = "size * 0.1 + rooms"\n', "")
    path = write("houses.toml", text)
    houses = load_declarations(path.parent, include_builtin=False)["houses"]
    assert houses.gate.metric == "rmse" and houses.gate.holdout_fraction == 0.2
    assert houses.fallback.strategy == "mean"


def test_bad_feature_type_names_file_field_and_choices(write: Write) -> None:
    path = write("bikes.toml", mixed().replace('type = "category"', 'type = "categorical"'))
    assert problems_of(path.parent) == [
        f"{path}: features[2].type: 'categorical' is not one of number, integer, category, boolean"
    ]


def test_unknown_estimator_class(write: Write) -> None:
    path = write("h.toml", mixed(estimator="sklearn.linear_model.Rigde"))
    (problem,) = problems_of(path.parent)
    assert problem.startswith(f"{path}: estimator.class: 'sklearn.linear_model.Rigde'")
    assert "has no 'Rigde'" in problem


@pytest.mark.parametrize(
    ("estimator", "why"),
    [
        ("os.system", "outside the allowed modules"),
        ("subprocess.Popen", "outside the allowed modules"),
        ("sklearnx.Model", "outside the allowed modules"),
        ("sklearn.__builtins__.eval", "dunder"),
        ("sklearn.preprocessing.StandardScaler", "no predict"),
        ("sklearn.linear_model.LogisticRegression", "is not a regressor"),
        ("Ridge", "not an import path"),
    ],
)
def test_estimator_outside_allow_list_or_not_a_model(
    write: Write, estimator: str, why: str
) -> None:
    path = write("h.toml", mixed(estimator=estimator))
    (problem,) = problems_of(path.parent)
    assert problem.startswith(f"{path}: estimator.class: ") and why in problem


def test_configured_prefix_extends_the_allow_list(write: Write) -> None:
    # ia_continu.families is not an estimator module; the point is the prefix check passes
    # and the estimator check is what refuses it.
    path = write("h.toml", mixed(estimator="ia_continu.families.delay.DelayFamily"))
    (refused,) = problems_of(path.parent)
    assert "outside the allowed modules (sklearn.)" in refused
    (other,) = problems_of(path.parent, extra_prefixes=["ia_continu.families"])
    assert "cannot be a model: it has no fit or predict" in other


def test_bad_estimator_params_are_caught_at_load(write: Write) -> None:
    path = write("h.toml", mixed(params="{ alpha = -1.0 }"))
    (problem,) = problems_of(path.parent)
    assert problem.startswith(f"{path}: estimator.params: ") and "'alpha'" in problem
    path.write_text(mixed(params="{ alhpa = 1.0 }"))
    (problem,) = problems_of(path.parent)
    assert "estimator.params" in problem and "alhpa" in problem


def test_nested_estimator_param(write: Write) -> None:
    nested = (
        '{ estimator = { class = "sklearn.tree.DecisionTreeRegressor", '
        "params = { max_depth = 3 } }, n_estimators = 5 }"
    )
    path = write("h.toml", mixed(estimator="sklearn.ensemble.BaggingRegressor", params=nested))
    bagging = load_declarations(path.parent, include_builtin=False)["houses"]
    assert bagging.estimator.params["estimator"]["params"] == {"max_depth": 3}
    path.write_text(
        mixed(
            estimator="sklearn.ensemble.BaggingRegressor",
            params=nested.replace("sklearn.tree", "os"),
        )
    )
    (problem,) = problems_of(path.parent)
    assert "estimator.params" in problem and "outside the allowed modules" in problem


@pytest.mark.parametrize(
    ("formula", "why"),
    [
        ("__import__('os')", "calls to '__import__' are not allowed"),
        ("__import__('os').system('ls')", "attribute access (x.y) is not allowed"),
        ("size.__class__", "attribute access (x.y) is not allowed"),
    ],
)
def test_unsafe_formula_is_refused_at_load(write: Write, formula: str, why: str) -> None:
    path = write("h.toml", mixed().replace('"size * 0.1 + rooms"', f'"{formula}"'))
    (problem,) = problems_of(path.parent)
    assert problem.startswith(f"{path}: fallback.formula: ") and why in problem


def test_formula_cannot_read_a_text_category(write: Write) -> None:
    path = write("h.toml", mixed().replace('"size * 0.1 + rooms"', '"city * 2"'))
    (problem,) = problems_of(path.parent)
    assert "fallback.formula" in problem and "'city' is not a numeric feature" in problem


def test_duplicate_name_names_both_files(write: Write) -> None:
    a = write("a.toml", mixed())
    b = write("b.toml", mixed())
    assert problems_of(a.parent) == [f"{b}: name: 'houses' is already declared by {a}"]


def test_user_file_cannot_reuse_a_builtin_name(write: Write) -> None:
    path = write("mine.toml", mixed(name="delay"))
    assert problems_of(path.parent) == [
        f"{path}: name: 'delay' is already declared by ia_continu/declared/builtin/delay.toml"
    ]


def test_missing_fields(write: Write) -> None:
    text = mixed().replace('[target]\nname = "price"\n', "").replace('name = "rooms"\n', "")
    path = write("h.toml", text)
    assert sorted(problems_of(path.parent)) == [
        f"{path}: features[1].name: is required",
        f"{path}: target: is required",
    ]


def test_every_problem_of_every_file_in_one_error(write: Write) -> None:
    folder = write("a.toml", mixed(name="a").replace("max = 100", 'max = "100"')).parent
    write("b.toml", mixed(name="b").replace('type = "boolean"', 'type = "boolean"\ncolour = 1'))
    write("c.toml", "name = \n")
    write("d.toml", mixed(name="Bad Name").replace('metric = "rmse"', 'metric = "accuracy_score"'))
    with pytest.raises(DeclarationError) as caught:
        load_declarations(folder)
    text = str(caught.value)
    assert isinstance(caught.value, IaContinuError)
    assert text.startswith("5 problems in model declarations:")
    assert "a.toml: features[0].max: must be a number, got '100' (text)" in text
    assert "b.toml: features[3].colour: is not a known field (check its spelling)" in text
    assert "c.toml: is not valid TOML: Invalid value (at line 1, column 8)" in text
    assert "d.toml: name: 'Bad Name' is not a slug" in text
    assert "d.toml: gate.metric: 'accuracy_score' is not a regression metric" in text


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            'task = "regression"',
            'task = "clustering"',
            "task: 'clustering' is not one of binary, multiclass, regression",
        ),
        ("tolerance = 2.0\n", "", "tolerance: is required for regression"),
        ("min = 1\nmax = 8", "min = 8\nmax = 1", "features[1].max: 1 is below min 8"),
        (
            "min = 1\nmax = 8",
            "min = 1.5\nmax = 8",
            "features[1].min: an integer feature needs a whole bound",
        ),
        (
            'values = ["paris", "lyon", "lille"]',
            'values = ["paris", "lyon", "paris"]',
            "features[2].values[2]: 'paris' is listed twice",
        ),
        (
            'values = ["paris", "lyon", "lille"]',
            "",
            "features[2].values: a category feature must list its allowed values",
        ),
        ("default = false", "default = 3", "features[3].default: must be true or false, got 3"),
        (
            "optional = true\n",
            "",
            "features[3].default: a default is only used with optional = true",
        ),
        (
            'name = "rooms"',
            'name = "size"',
            "features[1].name: 'size' is declared twice (also features[0])",
        ),
        (
            'name = "rooms"',
            'name = "2rooms"',
            "features[1].name: '2rooms' must start with a letter",
        ),
        (
            'name = "price"',
            'name = "price"\nclasses = [1, 2]',
            "target.classes: a regression target has no classes",
        ),
        (
            'formula = "size * 0.1 + rooms"',
            'strategy = "majority"',
            "fallback.strategy: 'majority' is not for regression: use 'mean'",
        ),
        (
            'formula = "size * 0.1 + rooms"',
            'formula = "size"\nconstant = 1.0',
            "fallback: needs exactly one of constant, strategy or formula (got constant and",
        ),
        (
            'metric = "rmse"',
            'metric = "rmse"\nholdout_fraction = 0.9',
            "gate.holdout_fraction: must be less than 0.5 (got 0.9)",
        ),
        (
            "tolerance = 2.0",
            "tolerance = 2.0\nrisk_bands = { high = 5, medium = 2 }",
            "risk_bands.medium: 2 must be above the previous band (5)",
        ),
        (
            "tolerance = 2.0",
            'tolerance = 2.0\nsimulator = { name = "weather" }',
            "simulator.name: 'weather' is not a built-in generator",
        ),
        (
            "tolerance = 2.0",
            'tolerance = 2.0\nsimulator = { name = "delay" }',
            "simulator.name: 'delay' does not generate size, rooms, city, garden",
        ),
        (
            "tolerance = 2.0",
            'tolerance = 2.0\ndataset = "sklearn:mnist"',
            "dataset: 'sklearn:mnist' is not a bundled dataset",
        ),
        (
            "[gate]",
            "[monitoring]\nmin_accuracy = 1.5\n\n[gate]",
            "monitoring.min_accuracy: must be less than or equal to 1 (got 1.5)",
        ),
    ],
)
def test_field_errors(write: Write, old: str, new: str, expected: str) -> None:
    text = mixed()
    assert old in text
    path = write("h.toml", text.replace(old, new, 1))
    found = problems_of(path.parent)
    assert any(p.startswith(f"{path}: {expected}") for p in found), found


def test_classifier_rules(write: Write) -> None:
    text = mixed().replace('task = "regression"\ntolerance = 2.0', 'task = "binary"')
    text = text.replace('name = "price"', 'name = "sold"\nclasses = ["no", "yes", "maybe"]')
    text = text.replace('metric = "rmse"', 'metric = "rmse"\n\n[monitoring]\nmax_mae = 2.0')
    path = write("h.toml", text)
    found = problems_of(path.parent)
    joined = "\n".join(found)
    assert "target.classes: a binary task needs exactly 2 classes, got 3" in joined
    assert "estimator.class: sklearn.linear_model.Ridge is not a classifier (binary)" in joined
    assert (
        "gate.metric: 'rmse' is not a binary metric (one of accuracy, f1, precision, recall)"
        in joined
    )
    assert "monitoring.max_mae: only for regression tasks" in joined


def test_missing_folder_is_a_problem(tmp_path: Path) -> None:
    assert problems_of(tmp_path / "nowhere") == [
        f"{tmp_path / 'nowhere'}: is not a folder of declarations"
    ]
