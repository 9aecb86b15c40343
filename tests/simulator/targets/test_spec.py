"""Targets declared in TOML and Python: defaults, and bad configs as clear ConfigErrors."""

from __future__ import annotations

import math
import pickle
import re
from pathlib import Path

import pytest

from cardworld.errors import ConfigError
from cardworld.simulator.targets.spec import Target, TargetSet, as_target_set, load_targets

GOOD = """
dtype = "float64"

[[target]]
name = "grocery_rest_of_week"
aggregate = "sum"
window = "week"
direction = "future"
mcc = [5411, 5499]

[[target]]
name = "travel_next_30d"
aggregate = "any"
window = "30d"
direction = "future"
category = "travel"

[[target]]
name = "top3_month"
aggregate = "topk_mean"
window = "month"
k = 3
fill = 0.0
"""


def test_toml_builds_targets_with_defaults(tmp_path):
    path = tmp_path / "targets.toml"
    path.write_text(GOOD)
    targets = load_targets(path)
    assert targets.dtype == "float64"
    assert targets.names == ["grocery_rest_of_week", "travel_next_30d", "top3_month"]
    week, label, top = targets.targets
    assert week.mcc == (5411, 5499) and week.include_current is False and week.unit == "week"
    assert label.rolling_us == 30 * 86_400_000_000 and label.category == "travel"
    assert (
        top.direction == "past" and top.include_current is True and top.k == 3 and top.fill == 0.0
    )
    assert as_target_set(path) == targets
    assert pickle.loads(pickle.dumps(targets)) == targets


def test_python_objects_equal_their_toml_twin(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text(
        '[[target]]\nname = "a"\naggregate = "mean"\nwindow = "36h"\ncategory = ["x", "y"]\n'
    )
    built = TargetSet((Target("a", "mean", "36h", category=("x", "y")),))
    assert load_targets(path) == built
    assert math.isnan(built.targets[0].fill)
    assert built.targets[0].rolling_us == 36 * 3_600_000_000


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            'aggregate = "summ"\nwindow = "day"',
            ["aggregate = 'summ'", "sum, mean, count, min, max, topk_mean, any"],
        ),
        ('aggregate = "sum"\nwindow = "fortnight"', ["window = 'fortnight'", '"7d"']),
        ('aggregate = "sum"\nwindow = "0d"', ["window = '0d'", "at least 1"]),
        ('aggregate = "sum"\nwindow = "-3d"', ["window = '-3d'"]),
        ('aggregate = "sum"\nwindow = "\u0667d"', ["window = '\u0667d'"]),  # an Arabic-Indic 7
        ('aggregate = "sum"\nwindow = "36526d"', ["window = '36526d'", "at most 36525d"]),
        (
            'aggregate = "sum"\nwindow = "day"\ndirection = "sideways"',
            ["direction = 'sideways'", "past or future"],
        ),
        ('aggregate = "sum"\nwindow = "day"\nwindw = "x"', ["windw = 'x'", "unknown key"]),
        ('aggregate = "topk_mean"\nwindow = "day"', ["k = None", "1..1024"]),
        ('aggregate = "topk_mean"\nwindow = "day"\nk = 0', ["k = 0"]),
        ('aggregate = "topk_mean"\nwindow = "day"\nk = 5000', ["k = 5000", "1..1024"]),
        ('aggregate = "sum"\nwindow = "day"\nk = 3', ["k = 3", "only to aggregate topk_mean"]),
        ('aggregate = "sum"\nwindow = "day"\nmcc = 12345', ["mcc = 12345", "0..9999"]),
        ('aggregate = "sum"\nwindow = "day"\nmcc = "5411"', ["mcc = '5411'"]),
        (
            'aggregate = "sum"\nwindow = "day"\nmcc = 5411\ncategory = "g"',
            ["either mcc or category"],
        ),
        ('aggregate = "sum"\nwindow = "day"\ncategory = []', ["category = []"]),
        ('aggregate = "sum"\nwindow = "day"\nmcc = [5411, "x"]', ["mcc = [5411, 'x']"]),
        (
            'aggregate = "sum"\nwindow = "day"\nfill = 0.0',
            ["fill = 0.0", "only mean, min, max, topk_mean"],
        ),
        (
            'aggregate = "sum"\nwindow = "day"\ninclude_current = "yes"',
            ["include_current = 'yes'", "true or false"],
        ),
        ('window = "day"', ["missing required key 'aggregate'"]),
    ],
)
def test_bad_target_names_file_target_key_value_and_expectation(tmp_path, body, expected):
    path = tmp_path / "bad.toml"
    path.write_text(
        f'[[target]]\nname = "ok"\naggregate = "sum"\nwindow = "day"\n\n[[target]]\nname = "t1"\n{body}\n'
    )
    with pytest.raises(ConfigError) as error:
        load_targets(path)
    message = str(error.value)
    assert message.startswith(f"{path}: target[1] 't1': "), message
    for part in expected:
        assert part in message, message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            'dtype = "float16"\n[[target]]\nname = "a"\naggregate = "sum"\nwindow = "day"',
            "dtype = 'float16': expected float32 or float64",
        ),
        (
            'targets = 1\n[[target]]\nname = "a"\naggregate = "sum"\nwindow = "day"',
            "targets = 1: unknown top-level key",
        ),
        ('dtype = "float32"', "target = None: expected one or more [[target]] tables"),
        (
            '[[target]]\nname = "a"\naggregate = "sum"\nwindow = "day"\n[[target]]\nname = "a"\naggregate = "count"\nwindow = "day"',
            "target[1]: name = 'a': expected unique target names (target[0] has it too)",
        ),
        ('[[target]]\nname = "txn_id"\naggregate = "sum"\nwindow = "day"', "name = 'txn_id'"),
        ("[[target]\n", "invalid TOML"),
    ],
)
def test_bad_documents(tmp_path, text, expected):
    path = tmp_path / "doc.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=None) as error:
        load_targets(path)
    assert str(error.value).startswith(str(path)), str(error.value)
    assert expected in str(error.value)


def test_missing_file_and_bad_python_objects(tmp_path):
    with pytest.raises(ConfigError, match="cannot read targets file"):
        load_targets(tmp_path / "nope.toml")
    latin = tmp_path / "latin.toml"
    latin.write_bytes('# caf\xe9\n[[target]]\nname = "a"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(latin))}: not UTF-8 text \(byte 5\)"):
        load_targets(latin)
    with pytest.raises(ConfigError, match=r"target 'x': aggregate = 'median'"):
        Target("x", "median", "day")
    with pytest.raises(ConfigError, match=r"expected at least one"):
        TargetSet(())
    with pytest.raises(ConfigError, match=r"expected Target objects"):
        TargetSet(("not a target",))


def test_the_readme_targets_example_loads(tmp_path):
    readme = (Path(__file__).parents[3] / "README.md").read_text()
    example = re.search(r"A targets file declares.*?```toml\n(.*?)```", readme, re.S).group(1)
    path = tmp_path / "targets.toml"
    path.write_text(example)
    target_set = load_targets(path)
    assert target_set.names == ["grocery_week_so_far", "flies_next_30d"]
    assert target_set.targets[1].direction == "future"


def test_a_name_that_is_not_text_is_named_once(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[[target]]\nname = 5\naggregate = "sum"\nwindow = "day"\n')
    with pytest.raises(ConfigError) as error:
        load_targets(path)
    assert str(error.value) == (
        f"{path}: target[0]: name = 5: expected a non-empty string (the output column name)"
    )
