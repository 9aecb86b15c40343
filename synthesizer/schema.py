"""Column roles of a grouped, ordered table: what the synthesizer learns, replaces or rebuilds.

A table is one row per event, grouped by a key column (an account, a consumer) and ordered
within a group by an order column (an index or a timestamp). Every other column gets a role:

- ``static``: constant within every group (state, birth date), learned once per group;
- ``event``: varies within a group (category, amount, timestamp), learned per event;
- ``pii``: identifies a person (names, card numbers, e-mails); never learned, replaced by
  consistent fake values at sampling time;
- ``id``: unique per row (a transaction id); never learned, rebuilt as a running number;
- ``order``: an integer order column; rebuilt as 1..n (or from its first value) per group;
- ``drop``: ignored (only by override).

and a kind (``categorical``, ``numeric``, ``datetime``) that picks its codec. Inference is a
heuristic; ``roles`` overrides take a role or a kind per column.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from cardworld.errors import ConfigError, DataError

ROLES = ("group", "order", "static", "event", "pii", "id", "drop")
KINDS = ("categorical", "numeric", "datetime")

# Names of columns that identify people. Words that name things rather than people
# (a merchant's name, a city's name) veto the match.
_PII_NAME = re.compile(
    r"(^|_)(name|names|first_?name|last_?name|full_?name|cardholder|card_?holder|holder|"
    r"email|e_?mail|phone|mobile|ssn|social|card_?num(ber)?|cc_?num(ber)?|pan|iban|"
    r"street|address|addr|passport|license)($|_)",
    re.IGNORECASE,
)
_NOT_PII_NAME = re.compile(
    r"merchant|city|state|country|categ|cat$|brand|chain|bank|issuer|product|zip",
    re.IGNORECASE,
)
# Integer columns with these words are codes (MCC, ZIP, type ids), not quantities.
_CODE_NAME = re.compile(r"mcc|code|zip|type|cat|kind|class|flag|_id$|^id$", re.IGNORECASE)
_DATE_LIKE = re.compile(r"^\s*\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?")

# An integer column with at most this many distinct values is treated as categorical.
MAX_INT_CATEGORIES = 32


@dataclass
class ColumnSpec:
    """One column: its name, role, codec kind and, for PII, the faker provider to use."""

    name: str
    role: str
    kind: str = "categorical"
    pii: str | None = None


@dataclass
class Schema:
    """The roles of every column of one table, in the table's column order."""

    group_by: str
    order_by: str | None
    columns: list[ColumnSpec] = field(default_factory=list)
    subject_columns: list[str] = field(default_factory=list)

    def by_role(self, *roles: str) -> list[ColumnSpec]:
        return [c for c in self.columns if c.role in roles]

    def column(self, name: str) -> ColumnSpec:
        for c in self.columns:
            if c.name == name:
                return c
        raise ConfigError(f"schema has no column {name!r}; columns: {self.names()}")

    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def time_column(self) -> str | None:
        """The event datetime column that carries the time line (deltas + calendar)."""
        events = [c for c in self.columns if c.role == "event" and c.kind == "datetime"]
        if not events:
            return None
        for c in events:
            if c.name == self.order_by:
                return c.name
        return events[0].name

    def to_json(self) -> dict:
        return {
            "group_by": self.group_by,
            "order_by": self.order_by,
            "columns": [asdict(c) for c in self.columns],
            "subject_columns": list(self.subject_columns),
        }

    @classmethod
    def from_json(cls, data: dict) -> Schema:
        return cls(
            group_by=data["group_by"],
            order_by=data["order_by"],
            columns=[ColumnSpec(**c) for c in data["columns"]],
            subject_columns=list(data.get("subject_columns", [])),
        )


def check_table(df: pd.DataFrame, *, group_by: str, order_by: str | None) -> None:
    """Raise DataError when the table cannot be learned: empty, missing keys, mixed types."""
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"expected a pandas DataFrame, found {type(df).__name__}")
    if len(df) == 0:
        raise DataError(f"the table is empty (0 rows, columns {list(df.columns)}); expected rows")
    for key, col in (("group_by", group_by), ("order_by", order_by)):
        if col is not None and col not in df.columns:
            raise DataError(
                f"{key} column {col!r} is not in the table; columns found: {list(df.columns)}"
            )
    if df[group_by].isna().any():
        n = int(df[group_by].isna().sum())
        raise DataError(f"group column {group_by!r} has {n} empty values; expected a key per row")
    for name in df.columns:
        _check_single_type(df[name])


def _check_single_type(s: pd.Series) -> None:
    if s.dtype != object:
        return
    kinds: dict[str, int] = {}
    for v in s.dropna().to_numpy():
        if isinstance(v, (bool, np.bool_)):
            k = "bool"
        elif isinstance(v, (int, float, np.integer, np.floating)):
            k = "number"
        elif isinstance(v, str):
            k = "str"
        elif isinstance(v, (pd.Timestamp, np.datetime64)):
            k = "datetime"
        else:
            k = type(v).__name__
        kinds[k] = kinds.get(k, 0) + 1
    if len(kinds) > 1:
        found = ", ".join(f"{k} ({n} rows)" for k, n in sorted(kinds.items()))
        raise DataError(
            f"column {s.name!r} mixes value types: {found}; expected one type per column"
        )


def looks_like_datetime(s: pd.Series) -> bool:
    """True for datetime dtypes, for columns of Python dates or datetimes (as Arrow's date
    columns read), and for string columns whose values are ISO dates."""
    if pd.api.types.is_datetime64_any_dtype(s):
        return True
    if not _is_text(s):
        return False
    sample = s.dropna().head(200)
    if sample.empty:
        return False
    if all(isinstance(v, dt.date) for v in sample):
        return True
    if not all(isinstance(v, str) for v in sample):
        return False
    return all(_DATE_LIKE.match(v) for v in sample)


def infer_schema(
    df: pd.DataFrame,
    *,
    group_by: str,
    order_by: str | None = None,
    roles: dict[str, str] | None = None,
    subject_columns: list[str] | None = None,
) -> Schema:
    """Infer each column's role and kind; ``roles`` maps a column to a role or a kind."""
    check_table(df, group_by=group_by, order_by=order_by)
    roles = dict(roles or {})
    for name, value in roles.items():
        if name not in df.columns:
            raise ConfigError(
                f"roles override names column {name!r}, which is not in the table; "
                f"columns: {list(df.columns)}"
            )
        if value not in ROLES and value not in KINDS:
            raise ConfigError(
                f"roles override for {name!r} is {value!r}; expected one of {', '.join(ROLES + KINDS)}"
            )
    groups = df.groupby(group_by, sort=False)
    n_groups = groups.ngroups
    columns: list[ColumnSpec] = []
    for name in df.columns:
        s = df[name]
        override = roles.get(name)
        if name == group_by:
            columns.append(ColumnSpec(name, "group", "categorical"))
            continue
        kind = _infer_kind(s) if override not in KINDS else override
        if name == order_by:
            role = "event" if kind == "datetime" else "order"
            kind = "datetime" if kind == "datetime" else "numeric"
            if role == "order" and not pd.api.types.is_integer_dtype(s):
                raise DataError(
                    f"order column {name!r} has dtype {s.dtype}; expected integers or datetimes"
                )
        elif override in ROLES:
            role = override
        elif _PII_NAME.search(name) and not _NOT_PII_NAME.search(name):
            role = "pii"
        elif subject_columns is not None and name in subject_columns:
            role = "static"
        elif _is_row_id(s):
            role = "id"
        elif n_groups > 1 and int(groups[name].nunique(dropna=False).max()) <= 1:
            role = "static"
        else:
            role = "event"
        pii = _faker_provider(name) if role == "pii" else None
        columns.append(ColumnSpec(name, role, kind, pii))
    return Schema(group_by, order_by, columns, list(subject_columns or []))


def _infer_kind(s: pd.Series) -> str:
    if looks_like_datetime(s):
        return "datetime"
    if pd.api.types.is_bool_dtype(s):
        return "categorical"
    if pd.api.types.is_integer_dtype(s):
        if _CODE_NAME.search(str(s.name)) or s.nunique() <= MAX_INT_CATEGORIES:
            return "categorical"
        return "numeric"
    if pd.api.types.is_float_dtype(s):
        return "numeric"
    return "categorical"


def _is_row_id(s: pd.Series) -> bool:
    """Unique per row, integer or string, and enough rows that uniqueness means something."""
    if len(s) < 50 or s.isna().any():
        return False
    if not (pd.api.types.is_integer_dtype(s) or _is_text(s)):
        return False
    return bool(s.is_unique)


def _is_text(s: pd.Series) -> bool:
    return s.dtype == object or pd.api.types.is_string_dtype(s)


def _faker_provider(name: str) -> str:
    n = name.lower()
    for words, provider in (
        (("email", "mail"), "email"),
        (("phone", "mobile"), "phone_number"),
        (("ssn", "social"), "ssn"),
        (("card", "cc_", "pan"), "credit_card_number"),
        (("iban",), "iban"),
        (("street", "address", "addr"), "street_address"),
        (("passport", "license"), "bothify"),
        (("first",), "first_name"),
        (("last",), "last_name"),
    ):
        if any(w in n for w in words):
            # "cardholder" is a person's name, not a card number.
            if provider == "credit_card_number" and "holder" in n:
                continue
            return provider
    return "name"
