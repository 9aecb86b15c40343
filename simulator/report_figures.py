"""Every figure of a ledger report, computed in one streaming pass over the transactions.

The transactions are read batch by batch with only the columns the figures need; each
batch is reduced to small partial tallies (counts and sums by group) that are merged at
the end, so memory follows the number of groups, never the number of rows. The entity
tables (consumers, cards, merchants) are read whole: they are joined to every batch.

Amount quantiles are exact: amounts are whole cents, so a tally of rows by (type, cents)
holds the full distribution in as many entries as there are distinct amounts, and the
quantiles use the same linear interpolation as pandas.

`compute_figures` returns a JSON-ready dict; report.py draws it and calibrate.py
measures its targets on it.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from cardworld.errors import LedgerError
from cardworld.simulator import ledger
from cardworld.worlds import reference

COLUMNS = [
    "timestamp",
    "consumer_id",
    "card_id",
    "merchant_id",
    "mcc",
    "category",
    "amount",
    "channel",
    "errors",
    "is_fraud",
    "fraud_mechanism",
    "consumer_state",
]
BATCH_ROWS = 1 << 20
QUANTILES = (0.5, 0.9, 0.99)
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
# Distance from home of in-person purchases: the home city and its neighbours, a day
# trip, a domestic trip, across the country, abroad.
DISTANCE_EDGES_KM = (0.0, 10.0, 50.0, 150.0, 500.0, 1500.0, 5000.0, np.inf)
# Purchase amounts on a log scale, $0.01 to $100,000, four bins per decade.
AMOUNT_EDGES = tuple(float(x) for x in np.round(10.0 ** np.arange(-2, 5.01, 0.25), 6))
# Tallies merge once this many partial results are waiting, to bound memory.
MERGE_EVERY = 32


class _Tallies:
    """Partial group-by results (Series or DataFrames indexed by group keys), merged by sum."""

    def __init__(self) -> None:
        self._parts: dict[str, list] = {}

    def add(self, name: str, part: pd.Series | pd.DataFrame) -> None:
        parts = self._parts.setdefault(name, [])
        parts.append(part)
        if len(parts) >= MERGE_EVERY:
            self._parts[name] = [self._merge(parts)]

    def get(self, name: str) -> pd.Series | pd.DataFrame:
        return self._merge(self._parts[name])

    @staticmethod
    def _merge(parts: list) -> pd.Series | pd.DataFrame:
        merged = pd.concat(parts)
        return merged.groupby(level=list(range(merged.index.nlevels)), sort=True).sum()


def compute_figures(ledger_dir: str | Path, *, batch_rows: int = BATCH_ROWS) -> dict:
    """Every figure of the report of the ledger at `ledger_dir`, as a JSON-ready dict."""
    manifest = ledger.read_manifest(ledger_dir)
    consumers = ledger.read_table(ledger_dir, "consumers", ["consumer_id", "lat", "lon"])
    # `replaces` (when the ledger has it) links a reissued card to the card it replaced;
    # `opened` starts its consumer's years.
    cards = ledger.read_table(
        ledger_dir, "cards", ["card_id", "consumer_id", "kind"], optional=("replaces", "opened")
    )
    merchants = ledger.read_table(ledger_dir, "merchants", ["merchant_id", "lat", "lon"])
    consumers, cards, merchants = (
        t.to_pandas().set_index(t.column_names[0]) for t in (consumers, cards, merchants)
    )
    cards["kind"] = cards["kind"].astype(str)
    cards["account"] = _accounts(cards)

    tallies = _Tallies()
    rows = 0
    batches = ledger.transaction_batches(ledger_dir, COLUMNS, batch_rows)
    for batch in batches:
        if batch.num_rows:
            _tally_batch(batch.to_pandas(), tallies, consumers, cards, merchants)
            rows += batch.num_rows
    if not rows:
        raise LedgerError(f"{ledger_dir}: has no transactions to report on")

    start = dt.date.fromisoformat(manifest["start"])
    end = dt.date.fromisoformat(manifest["end"])
    figures = {
        "overview": _overview(manifest, tallies, consumers, cards, merchants),
        **_per_year(tallies, _consumer_years(consumers, cards, start, end)),
        **_categories(tallies),
        **_calendar(tallies, start, end),
        **_channels(tallies),
        **_errors(tallies),
        **_travel(tallies),
        "fraud": _fraud(tallies),
        "refunds": _refunds(tallies),
        **_cards(tallies, cards),
    }
    return _plain(figures)


def _tally_batch(
    df: pd.DataFrame,
    tallies: _Tallies,
    consumers: pd.DataFrame,
    cards: pd.DataFrame,
    merchants: pd.DataFrame,
) -> None:
    """Reduce one batch of transactions to partial tallies."""
    ts = df["timestamp"]
    year = ts.dt.year.rename("year")
    day = ts.dt.floor("D").rename("day")
    cents = (df["amount"] * 100).round().astype(np.int64).rename("cents")
    purchase = (cents > 0).rename("purchase")
    refund = (cents < 0).astype(np.int64)
    fraud = df["is_fraud"].astype(np.int64)
    positive = cents.where(cents > 0, 0)
    category = df["category"].astype(str).rename("category")
    channel = df["channel"].astype(str).rename("channel")
    state = df["consumer_state"].astype(str).rename("state")

    tallies.add("consumer_year", df.groupby([year, df["consumer_id"]]).size())
    tallies.add("day", df.groupby(day).size())
    tallies.add("category_cents", df.groupby([category, cents]).size())
    tallies.add(
        "category",
        pd.DataFrame(
            {
                "rows": 1,
                "purchases": purchase.astype(np.int64),
                "cents": positive,
                "refunds": refund,
                "fraud": fraud,
            }
        )
        .groupby(category)
        .sum(),
    )
    tallies.add("category_hour", df.groupby([category, ts.dt.hour.rename("hour")]).size())
    tallies.add("mcc", df.groupby("mcc").size())
    tallies.add(
        "channel_year",
        pd.DataFrame(
            {"rows": 1, "refunds": refund, "fraud": fraud, "fraud_cents": positive * fraud}
        )
        .groupby([year, channel])
        .sum(),
    )
    errors = df["errors"].astype(object).where(df["errors"].notna(), None)
    has_error = errors.notna()
    tallies.add(
        "errors", df[has_error].groupby([errors[has_error].rename("error"), channel]).size()
    )
    tallies.add(
        "year",
        pd.DataFrame(
            {
                "rows": 1,
                "cents": positive,
                "fraud": fraud,
                "fraud_cents": positive * fraud,
                "errors": has_error.astype(np.int64),
            }
        )
        .groupby(year)
        .sum(),
    )
    mechanism = df["fraud_mechanism"].astype(object)
    is_fraud = df["is_fraud"].to_numpy()
    tallies.add(
        "mechanism",
        pd.DataFrame({"rows": 1, "cents": positive})[is_fraud]
        .groupby(mechanism[is_fraud].fillna("unknown").rename("mechanism"))
        .sum(),
    )

    # Distance from home of in-person purchases: merchant location against home.
    home = consumers.loc[df["consumer_id"].to_numpy(), ["lat", "lon"]].to_numpy()
    shop = merchants.loc[df["merchant_id"].to_numpy(), ["lat", "lon"]].to_numpy()
    in_person = ~np.isnan(shop[:, 0])
    km = reference.haversine_km(*np.radians(home.T), *np.radians(shop.T))
    km = pd.Series(np.where(in_person, km, np.nan), index=df.index, name="km")
    band = pd.cut(km, DISTANCE_EDGES_KM, right=False, labels=False).rename("band")
    tallies.add(
        "state",
        pd.DataFrame({"rows": 1, "in_person": in_person.astype(np.int64), "km": km.fillna(0.0)})
        .groupby(state)
        .sum(),
    )
    tallies.add("state_band", df[in_person].groupby([state[in_person], band[in_person]]).size())

    kind = pd.Series(cards.loc[df["card_id"].to_numpy(), "kind"].to_numpy(), index=df.index)
    tallies.add(
        "kind_year",
        pd.DataFrame({"purchases": purchase.astype(np.int64), "cents": positive})
        .groupby([kind.rename("kind"), year])
        .sum(),
    )
    account = pd.Series(cards.loc[df["card_id"].to_numpy(), "account"].to_numpy(), name="account")
    tallies.add("card", df.groupby("card_id").size())
    tallies.add("account", account.groupby(account).size())


def quantiles_from_counts(values: np.ndarray, counts: np.ndarray, qs: Iterable[float]) -> list:
    """Quantiles of a distribution given as sorted distinct values and their counts.

    Linear interpolation between order statistics, as pandas' default `quantile`.
    """
    cum = np.cumsum(counts)
    n = int(cum[-1]) if len(cum) else 0
    if n == 0:
        return [float("nan") for _ in qs]
    out = []
    for q in qs:
        h = (n - 1) * q
        lo = int(np.floor(h))
        v_lo = values[np.searchsorted(cum, lo, side="right")]
        v_hi = values[np.searchsorted(cum, min(lo + 1, n - 1), side="right")]
        out.append(float(v_lo + (h - lo) * (v_hi - v_lo)))
    return out


def _overview(manifest, tallies, consumers, cards, merchants) -> dict:
    days = tallies.get("day")
    rows = int(days.sum())
    year = tallies.get("year")
    active = tallies.get("consumer_year").index.get_level_values("consumer_id").unique()
    return {
        "world": manifest.get("world"),
        "seed": manifest.get("seed"),
        "period": [manifest.get("start"), manifest.get("end")],
        "rows": rows,
        "consumers": len(consumers),
        "active_consumers": len(active),
        "cards": len(cards),
        "cards_used": len(tallies.get("card")),
        "merchants": len(merchants),
        "first_day": days.index.min().date().isoformat(),
        "last_day": days.index.max().date().isoformat(),
        "fraud_rows": int(year["fraud"].sum()),
        "error_rows": int(year["errors"].sum()),
    }


def _consumer_years(
    consumers: pd.DataFrame, cards: pd.DataFrame, start: dt.date, end: dt.date
) -> pd.Series:
    """Consumer-years each calendar year of the period covers: every consumer counts from
    their first card's opening (the period's start when earlier, or when the ledger does not
    date its cards) to the period's end, each day as 1/365 (1/366) of its year. A consumer
    with no card counts nothing."""
    first = pd.Timestamp(start)
    years = range(start.year, end.year + 1)
    if "opened" in cards.columns and len(cards):
        opened = pd.to_datetime(cards.groupby("consumer_id")["opened"].min())
        since = opened.clip(lower=first)
    else:
        since = pd.Series(first, index=consumers.index)
    covered = {}
    for year in years:
        lo = max(pd.Timestamp(year, 1, 1), first)
        hi = min(pd.Timestamp(year, 12, 31), pd.Timestamp(end))
        days = ((hi - since.clip(lower=lo)).dt.days + 1).clip(lower=0)
        covered[year] = days.sum() / (366 if calendar.isleap(year) else 365)
    return pd.Series(covered, dtype=float).rename_axis("year")


def _per_year(tallies, consumer_years: pd.Series) -> dict:
    consumer_year = tallies.get("consumer_year")
    grouped = consumer_year.groupby(level="year")
    per_year = pd.DataFrame({"rows": grouped.sum(), "consumers": grouped.size()})
    # Per consumer-year covered: a year the period covers in part counts in part.
    per_year["consumer_years"] = consumer_years.reindex(per_year.index)
    per_year["per_consumer"] = per_year["rows"] / per_year["consumer_years"]
    return {
        "per_year": _records(per_year.reset_index()),
        # Rows over the consumer-years the ledger's period covers (not over the calendar
        # years it touches: a ledger of one quarter counts a quarter of a year each).
        "transactions_per_consumer_year": float(per_year["rows"].sum() / consumer_years.sum()),
        "consumer_years": float(consumer_years.sum()),
    }


def _amount_stats(values: np.ndarray, counts: np.ndarray) -> dict:
    n = int(counts.sum())
    return {
        "rows": n,
        "mean": float((values * counts).sum() / n) if n else float("nan"),
        **{
            f"p{round(q * 100)}": v
            for q, v in zip(
                QUANTILES, quantiles_from_counts(values, counts, QUANTILES), strict=True
            )
        },
    }


def _categories(tallies) -> dict:
    by_cents = tallies.get("category_cents")
    overall = by_cents.groupby(level="cents").sum()
    values = overall.index.to_numpy() / 100.0
    counts = overall.to_numpy()
    positive = values > 0
    histogram = np.histogram(values[positive], bins=AMOUNT_EDGES, weights=counts[positive])[0]

    table = tallies.get("category")
    rows = table["rows"].sum()
    stats = []
    for category, sub in by_cents.groupby(level="category"):
        cents = sub.index.get_level_values("cents").to_numpy()
        keep = cents > 0
        purchases = _amount_stats(cents[keep] / 100.0, sub.to_numpy()[keep])
        stats.append({"category": category, **{k: v for k, v in purchases.items() if k != "rows"}})
    stats = pd.DataFrame(stats).set_index("category")
    table = table.join(stats)
    table["share"] = table["rows"] / rows
    table["amount"] = table.pop("cents") / 100.0
    table["amount_share"] = table["amount"] / table["amount"].sum()
    table["refund_share"] = table["refunds"] / table["rows"]
    table["fraud_share"] = table["fraud"] / table["rows"]
    table = table.sort_values(["rows", "category"], ascending=[False, True]).reset_index()

    mcc = tallies.get("mcc").rename("rows").reset_index()
    mcc["share"] = mcc["rows"] / rows
    descriptions = reference.mcc_descriptions()
    mcc["description"] = [descriptions.get(int(m), "") for m in mcc["mcc"]]
    mcc = mcc.sort_values(["rows", "mcc"], ascending=[False, True])

    hours = tallies.get("category_hour").unstack("hour", fill_value=0)
    hours = hours.reindex(columns=range(24), fill_value=0).reindex(table["category"])
    return {
        "amounts": {
            **_amount_stats(values, counts),
            "purchases": _amount_stats(values[positive], counts[positive]),
            "histogram": {"edges": list(AMOUNT_EDGES), "counts": histogram.astype(int).tolist()},
        },
        "categories": _records(table),
        "mccs": _records(mcc),
        "hour_by_category": {
            "categories": list(hours.index),
            "counts": hours.to_numpy().astype(int).tolist(),
        },
    }


def _calendar(tallies, start: dt.date, end: dt.date) -> dict:
    days = tallies.get("day")
    index = pd.date_range(start, end, freq="D")
    days = days.reindex(index, fill_value=0)
    weekday = days.groupby(days.index.day_of_week).sum()
    month = days.groupby(days.index.month).agg(["sum", "size"])
    day_numbers = (index - pd.Timestamp("1970-01-01")).days.to_numpy()
    is_holiday = np.isin(day_numbers, reference.holiday_days(start, end))
    names = pd.Series(reference.holiday_names(start, end)).reindex(day_numbers).to_numpy()
    ordinary = days[pd.isna(names)].mean()
    named = days.groupby(names, dropna=True).agg(["size", "mean"]).sort_values("mean")
    by_month = days.groupby(days.index.to_period("M")).sum()
    return {
        "weekday": _with_share(
            [{"weekday": WEEKDAYS[d], "rows": int(weekday.get(d, 0))} for d in range(7)]
        ),
        "months": [
            {
                "month": int(m),
                "rows": int(row["sum"]),
                "rows_per_day": float(row["sum"] / row["size"]),
            }
            for m, row in month.iterrows()
        ],
        "monthly_rows": [{"month": str(p), "rows": int(v)} for p, v in by_month.items()],
        "holidays": {
            "days": int(is_holiday.sum()),
            "rows_per_holiday": float(days[is_holiday].mean()) if is_holiday.any() else None,
            "rows_per_other_day": float(days[~is_holiday].mean()),
            "ratio": float(days[is_holiday].mean() / days[~is_holiday].mean())
            if is_holiday.any()
            else None,
            # Each named day (public holidays, observances, Black Friday) against the days
            # that have no name, quietest first.
            "by_name": [
                {
                    "name": str(name),
                    "days": int(row["size"]),
                    "rows_per_day": float(row["mean"]),
                    "ratio": float(row["mean"] / ordinary) if ordinary else None,
                }
                for name, row in named.iterrows()
            ],
        },
    }


def _with_share(records: list[dict]) -> list[dict]:
    total = sum(r["rows"] for r in records)
    return [{**r, "share": r["rows"] / total if total else 0.0} for r in records]


def _channels(tallies) -> dict:
    table = tallies.get("channel_year")["rows"].unstack("channel", fill_value=0)
    rows = table.sum(axis=1)
    per_year = []
    for year, row in table.iterrows():
        in_person = row.get("chip", 0) + row.get("swipe", 0)
        per_year.append(
            {
                "year": int(year),
                "rows": int(rows[year]),
                **{f"{c}_share": float(row[c] / rows[year]) for c in table.columns},
                "chip_in_person_share": float(row.get("chip", 0) / in_person)
                if in_person
                else None,
            }
        )
    total = table.sum()
    return {
        "channel_by_year": per_year,
        "channels": _with_share([{"channel": c, "rows": int(total[c])} for c in total.index]),
    }


def _errors(tallies) -> dict:
    rows = int(tallies.get("year")["rows"].sum())
    by_error = tallies.get("errors")
    per_error = by_error.groupby(level="error").sum().sort_values(ascending=False, kind="stable")
    by_channel = by_error.unstack("channel", fill_value=0)
    return {
        "errors": [
            {
                "error": e,
                "rows": int(n),
                "share": n / rows,
                "by_channel": {c: int(v) for c, v in by_channel.loc[e].items()},
            }
            for e, n in per_error.items()
        ],
        "error_share": float(per_error.sum() / rows) if rows else 0.0,
    }


def _travel(tallies) -> dict:
    table = tallies.get("state")
    rows = table["rows"].sum()
    bands = tallies.get("state_band").unstack("band", fill_value=0)
    labels = [
        f"{lo:g}-{hi:g} km" if np.isfinite(hi) else f"{lo:g}+ km"
        for lo, hi in zip(DISTANCE_EDGES_KM[:-1], DISTANCE_EDGES_KM[1:], strict=True)
    ]
    bands = bands.reindex(columns=range(len(labels)), fill_value=0)
    states = []
    for state, row in table.iterrows():
        states.append(
            {
                "state": state,
                "rows": int(row["rows"]),
                "share": row["rows"] / rows,
                "in_person_rows": int(row["in_person"]),
                "mean_km": row["km"] / row["in_person"] if row["in_person"] else None,
                "distance_bands": [int(v) for v in bands.loc[state]]
                if state in bands.index
                else [0] * len(labels),
            }
        )
    away = sum(s["rows"] for s in states if s["state"] != "home")
    return {
        "travel": {
            "away_share": away / rows if rows else 0.0,
            "states": states,
            "distance_bands": labels,
        }
    }


def _fraud(tallies) -> dict:
    year = tallies.get("year")
    rows, fraud = int(year["rows"].sum()), int(year["fraud"].sum())
    cents, fraud_cents = year["cents"].sum(), year["fraud_cents"].sum()
    mechanism = tallies.get("mechanism")
    channel = tallies.get("channel_year").groupby(level="channel").sum()
    category = tallies.get("category")
    by_year = year.assign(
        rate=year["fraud"] / year["rows"],
        value_bps=1e4 * year["fraud_cents"] / year["cents"].where(year["cents"] > 0),
    )
    return {
        "rows": fraud,
        "share": fraud / rows if rows else 0.0,
        "value_bps": float(1e4 * fraud_cents / cents) if cents else 0.0,
        "by_mechanism": [
            {"mechanism": m, "rows": int(r["rows"]), "amount": r["cents"] / 100.0}
            for m, r in mechanism.iterrows()
        ],
        "by_channel": [
            {
                "channel": c,
                "rows": int(r["rows"]),
                "fraud": int(r["fraud"]),
                "rate": r["fraud"] / r["rows"],
            }
            for c, r in channel.iterrows()
        ],
        "by_category": [
            {
                "category": c,
                "rows": int(r["rows"]),
                "fraud": int(r["fraud"]),
                "rate": r["fraud"] / r["rows"],
            }
            for c, r in category.sort_values("fraud", ascending=False, kind="stable").iterrows()
            if r["fraud"] > 0
        ],
        "by_year": [
            {
                "year": int(y),
                "rows": int(r["rows"]),
                "fraud": int(r["fraud"]),
                "rate": r["rate"],
                "amount": r["cents"] / 100.0,
                "fraud_amount": r["fraud_cents"] / 100.0,
                "value_bps": r["value_bps"],
            }
            for y, r in by_year.iterrows()
        ],
    }


def _refunds(tallies) -> dict:
    channel = tallies.get("channel_year").groupby(level="channel").sum()
    rows, refunds = int(channel["rows"].sum()), int(channel["refunds"].sum())
    category = tallies.get("category")
    return {
        "rows": refunds,
        "share": refunds / rows if rows else 0.0,
        "by_channel": [
            {
                "channel": c,
                "rows": int(r["rows"]),
                "refunds": int(r["refunds"]),
                "share": r["refunds"] / r["rows"],
            }
            for c, r in channel.iterrows()
        ],
        "by_category": [
            {
                "category": c,
                "rows": int(r["rows"]),
                "refunds": int(r["refunds"]),
                "share": r["refunds"] / r["rows"],
            }
            for c, r in category.sort_values("refunds", ascending=False, kind="stable").iterrows()
        ],
    }


def _accounts(cards: pd.DataFrame) -> np.ndarray:
    """The original card of each card's chain of replacements (itself when not a reissue)."""
    account = cards.index.to_numpy().copy()
    if "replaces" not in cards.columns:
        return account
    parent = cards["replaces"]
    for _ in range(len(cards)):  # chains are short: a card is reissued a few times at most
        up = parent.reindex(account).to_numpy()
        moved = ~pd.isna(up)
        if not moved.any():
            break
        account[moved] = up[moved].astype(np.int64)
    return account


def _cards(tallies, cards: pd.DataFrame) -> dict:
    kind_year = tallies.get("kind_year")
    per_kind = kind_year.groupby(level="kind").sum()
    held = cards["kind"].value_counts()
    per_card = tallies.get("card")
    per_account = tallies.get("account")
    return {
        "cards": {
            "per_consumer": len(cards) / cards["consumer_id"].nunique() if len(cards) else 0.0,
            # Reissues of blocked cards continue their account, as TabFormer's cards do.
            "accounts_per_consumer": cards["account"].nunique() / cards["consumer_id"].nunique()
            if len(cards)
            else 0.0,
            "transactions_per_card_used": float(per_card.mean()) if len(per_card) else 0.0,
            "transactions_per_account_used": float(per_account.mean()) if len(per_account) else 0.0,
            "kinds": [
                {
                    "kind": k,
                    "cards": int(held.get(k, 0)),
                    "card_share": held.get(k, 0) / len(cards),
                    "purchases": int(per_kind.loc[k, "purchases"]) if k in per_kind.index else 0,
                    "ticket": per_kind.loc[k, "cents"] / 100.0 / per_kind.loc[k, "purchases"]
                    if k in per_kind.index and per_kind.loc[k, "purchases"]
                    else None,
                }
                for k in sorted(held.index)
            ],
            "ticket_by_kind_year": [
                {
                    "kind": k,
                    "year": int(y),
                    "purchases": int(r["purchases"]),
                    "ticket": r["cents"] / 100.0 / r["purchases"] if r["purchases"] else None,
                }
                for (k, y), r in kind_year.iterrows()
            ],
        }
    }


def _records(df: pd.DataFrame) -> list[dict]:
    return df.to_dict(orient="records")


def _plain(value):
    """numpy scalars and NaN turned into JSON's numbers and null."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return None if np.isnan(value) or np.isinf(value) else value
    if isinstance(value, np.bool_):
        return bool(value)
    return value
