"""Datetime columns: the event time line as a start date, day deltas and calendar fields.

An event datetime column (the time line of a group) is split into a start day (a static field
of the group: days since 1970, numeric codec), a per-event delta in days from the previous
event (numeric codec, exact for integers), and the time of day as hour, minute and second
tokens down to the resolution the data have. The hour token is what lets the model learn
hour-of-day by category; the day delta is what gives gaps between events. Times round-trip
exactly at second resolution. Where the data's times rise within every group, the table
codec puts sampled rows in time order (an event sampled earlier in its day than the one
before it moves before it; a continued history's own rows stay as given).

A static datetime column (a birth date) is one number: seconds since 1970, numeric codec.
A column of Python dates (as Arrow's date columns read) is sampled as dates again.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from cardworld.synthesizer.codec import numeric

_RESOLUTIONS = ("day", "hour", "minute", "second")
_CALENDAR = (("hour", 24, 3600), ("minute", 60, 60), ("second", 60, 1))


def to_datetime(values: pd.Series) -> tuple[pd.Series, str | None]:
    """Naive datetimes (local wall-clock time) and the time zone they carried, if any."""
    t = pd.to_datetime(values, errors="raise")
    tz = None
    if getattr(t.dt, "tz", None) is not None:
        tz = str(t.dt.tz)
        t = t.dt.tz_localize(None)
    return t, tz


def analyze(
    values: pd.Series,
    first: np.ndarray,
    *,
    n_bins: int = 64,
    n_sub: int = 64,
    rare_threshold: int = 1,
) -> dict:
    """first: whether each row is its group's first. The start day is a value per group
    (see numeric.analyze on rare_threshold); the day deltas are events."""
    t, tz = to_datetime(values)
    seconds = _seconds(t)
    day, sod = np.divmod(seconds, 86400)
    delta = np.where(first, 0, day - np.roll(day, 1))
    resolution = "day"
    if np.any(sod % 60 != 0):
        resolution = "second"
    elif np.any(sod % 3600 != 0):
        resolution = "minute"
    elif np.any(sod != 0):
        resolution = "hour"
    return {
        "kind": "datetime",
        "mode": "event",
        "tz": tz,
        "resolution": resolution,
        # Sorted within every group: the table codec keeps sampled rows in time order too.
        "monotone": bool(np.all(np.diff(seconds)[~first[1:]] >= 0)),
        "start": numeric.analyze(
            pd.Series(day[first]),
            n_bins=n_bins,
            n_sub=n_sub,
            rare_threshold=rare_threshold,
            per_group=True,
        ),
        "delta": numeric.analyze(
            pd.Series(delta[~first]) if (~first).any() else pd.Series([0]),
            n_bins=n_bins,
            n_sub=n_sub,
        ),
    }


def static_fields(stats: dict) -> list[tuple[str, int]]:
    return [(f"start_{n}", s) for n, s in numeric.fields(stats["start"])]


def event_fields(stats: dict) -> list[tuple[str, int]]:
    out = [(f"delta_{n}", s) for n, s in numeric.fields(stats["delta"])]
    depth = _RESOLUTIONS.index(stats["resolution"])
    out += [(name, size) for name, size, _ in _CALENDAR[:depth]]
    return out


def blocked(stats: dict) -> dict[str, list[int]]:
    out = {f"start_{k}": v for k, v in numeric.blocked(stats["start"]).items()}
    out.update({f"delta_{k}": v for k, v in numeric.blocked(stats["delta"]).items()})
    return out


def encode(values: pd.Series, first: np.ndarray, stats: dict) -> dict[str, np.ndarray]:
    """Codes per row; the ``start_*`` codes are meaningful on each group's first row only."""
    t, _ = to_datetime(values)
    seconds = _seconds(t)
    day, sod = np.divmod(seconds, 86400)
    delta = np.where(first, 0, day - np.roll(day, 1))
    out = {f"start_{k}": v for k, v in numeric.encode(pd.Series(day), stats["start"]).items()}
    out.update(
        {f"delta_{k}": v for k, v in numeric.encode(pd.Series(delta), stats["delta"]).items()}
    )
    depth = _RESOLUTIONS.index(stats["resolution"])
    for name, size, unit in _CALENDAR[:depth]:
        out[name] = (sod // unit) % size
    return out


def decode(
    codes: dict[str, np.ndarray], first: np.ndarray, stats: dict, rng: np.random.Generator
) -> pd.Series:
    """Rows of all groups in order; ``first`` marks each group's first row."""
    return to_times(decode_seconds(codes, first, stats, rng), stats)


def decode_seconds(
    codes: dict[str, np.ndarray], first: np.ndarray, stats: dict, rng: np.random.Generator
) -> np.ndarray:
    """The sampled times as wall-clock seconds since 1970 (before any time zone), in the
    rows' order, which may step back within a day (see TableCodec.decode)."""
    start = numeric.decode(
        {k[6:]: v for k, v in codes.items() if k.startswith("start_")}, stats["start"], rng
    ).to_numpy(dtype=np.int64)
    delta = numeric.decode(
        {k[6:]: v for k, v in codes.items() if k.startswith("delta_")}, stats["delta"], rng
    ).to_numpy(dtype=np.int64)
    delta = np.where(first, 0, delta)
    group = np.cumsum(first) - 1
    # Day of each event: the group's start day plus the running sum of its deltas.
    running = np.cumsum(delta)
    offset = running - running[np.flatnonzero(first)][group]
    day = start[np.flatnonzero(first)][group] + offset
    sod = np.zeros(day.size, dtype=np.int64)
    depth = _RESOLUTIONS.index(stats["resolution"])
    for name, _, unit in _CALENDAR[:depth]:
        sod += np.asarray(codes[name], dtype=np.int64) * unit
    return day * 86400 + sod


def to_times(secs: np.ndarray, stats: dict) -> pd.Series:
    """Wall-clock seconds as the column's datetimes (in its time zone, if it had one)."""
    t = pd.Series(pd.to_datetime(secs, unit="s"))
    if stats["tz"]:
        t = t.dt.tz_localize(stats["tz"], ambiguous="NaT", nonexistent="shift_forward")
    return t


def analyze_static(
    values: pd.Series, *, n_bins: int = 64, n_sub: int = 64, rare_threshold: int = 1
) -> dict:
    """values: one per group (see numeric.analyze on rare_threshold)."""
    t, tz = to_datetime(values)
    secs = pd.Series(np.where(t.isna(), np.nan, _seconds(t.fillna(pd.Timestamp(0)))))
    given = values.dropna()
    return {
        "kind": "datetime",
        "mode": "static",
        "tz": tz,
        "dates": bool(len(given))
        and all(isinstance(v, dt.date) and not isinstance(v, dt.datetime) for v in given),
        "seconds": numeric.analyze(
            secs, n_bins=n_bins, n_sub=n_sub, rare_threshold=rare_threshold, per_group=True
        ),
    }


def encode_static(values: pd.Series, stats: dict) -> dict[str, np.ndarray]:
    t, _ = to_datetime(values)
    secs = pd.Series(np.where(t.isna(), np.nan, _seconds(t.fillna(pd.Timestamp(0)))))
    return numeric.encode(secs, stats["seconds"])


def decode_static(codes: dict[str, np.ndarray], stats: dict, rng: np.random.Generator) -> pd.Series:
    secs = numeric.decode(codes, stats["seconds"], rng)
    t = pd.Series(
        pd.to_datetime(secs.astype("Float64").to_numpy(dtype=float, na_value=np.nan), unit="s")
    )
    if stats["tz"]:
        t = t.dt.tz_localize(stats["tz"], ambiguous="NaT", nonexistent="shift_forward")
    if stats.get("dates"):  # models saved before dates were told apart have no such key
        return pd.Series([None if pd.isna(v) else v.date() for v in t], dtype=object)
    return t


def _seconds(t: pd.Series) -> np.ndarray:
    """Whole seconds since 1970 (sub-second parts are dropped)."""
    return t.to_numpy(dtype="datetime64[s]").astype(np.int64)
