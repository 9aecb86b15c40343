"""Schema inference and the clear errors bad input gets."""

from __future__ import annotations

import pandas as pd
import pytest

from cardworld.errors import ConfigError, DataError
from cardworld.synthesizer import Synthesizer
from cardworld.synthesizer.schema import infer_schema


def test_roles_of_a_nemo_shaped_table(table: pd.DataFrame) -> None:
    schema = infer_schema(table, group_by="acct_id", order_by="txn_index")
    roles = {c.name: (c.role, c.kind) for c in schema.columns}
    assert roles == {
        "acct_id": ("group", "categorical"),
        "cardholder": ("pii", "categorical"),
        "state": ("static", "categorical"),
        "txn_index": ("order", "numeric"),
        "timestamp": ("event", "datetime"),
        "merchant_cat": ("event", "categorical"),
        "txn_amount": ("event", "numeric"),
    }
    assert schema.column("cardholder").pii == "name"
    assert schema.time_column == "timestamp"


def test_overrides_and_string_dates(table: pd.DataFrame) -> None:
    df = table.assign(timestamp=table["timestamp"].astype(str), txn_id=range(len(table)))
    schema = infer_schema(
        df, group_by="acct_id", order_by="txn_index", roles={"state": "pii", "txn_amount": "drop"}
    )
    assert schema.column("state").role == "pii"
    assert schema.column("txn_amount").role == "drop"
    assert schema.column("timestamp").kind == "datetime"
    assert schema.column("txn_id").role == "id"
    assert schema.column("merchant_cat").role == "event"


def test_merchant_name_is_not_pii() -> None:
    df = pd.DataFrame({"g": [1, 1, 2], "merchant_name": ["a", "b", "a"], "email": ["x", "x", "y"]})
    schema = infer_schema(df, group_by="g")
    assert schema.column("merchant_name").role == "event"
    assert schema.column("email").role == "pii"
    assert schema.column("email").pii == "email"


def test_missing_group_column(table: pd.DataFrame) -> None:
    with pytest.raises(DataError, match=r"group_by column 'account'.*columns found"):
        Synthesizer(max_epochs=1).fit(table, group_by="account", order_by="txn_index")


def test_missing_order_column(table: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="order_by column 'when'"):
        infer_schema(table, group_by="acct_id", order_by="when")


def test_empty_table(table: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="empty"):
        Synthesizer(max_epochs=1).fit(table.iloc[:0], group_by="acct_id")


def test_mixed_types(table: pd.DataFrame) -> None:
    df = table.astype({"merchant_cat": object})
    df.loc[3, "merchant_cat"] = 17
    with pytest.raises(DataError, match=r"column 'merchant_cat' mixes value types: number"):
        Synthesizer(max_epochs=1).fit(df, group_by="acct_id", order_by="txn_index")


def test_null_group_keys(table: pd.DataFrame) -> None:
    df = table.astype({"acct_id": object})
    df.loc[0, "acct_id"] = None
    with pytest.raises(DataError, match="group column 'acct_id' has 1 empty"):
        infer_schema(df, group_by="acct_id")


def test_bad_override_and_config(table: pd.DataFrame) -> None:
    with pytest.raises(ConfigError, match="'nope'.*expected one of"):
        infer_schema(table, group_by="acct_id", roles={"state": "nope"})
    with pytest.raises(ConfigError, match="n_embd=30 is not a multiple of n_head=4"):
        Synthesizer(n_embd=30, n_head=4)
    with pytest.raises(ConfigError, match="unknown synthesizer config keys"):
        Synthesizer(n_layers=3)


def test_nothing_to_learn() -> None:
    df = pd.DataFrame({"g": [1, 1, 2, 2], "state": ["CA", "CA", "NY", "NY"]})
    with pytest.raises(DataError, match="no event columns"):
        Synthesizer(max_epochs=1).fit(df, group_by="g")


def test_sample_before_fit() -> None:
    with pytest.raises(ConfigError, match="not fitted"):
        Synthesizer().sample(3)
