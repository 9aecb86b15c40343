"""The fraud world as arrays: fraudsters, breaches and methods; and the tables they leave.

Fraudsters and breaches belong to the whole world, not to a shard: they are drawn from
the world seed (fraudster f from its own stream, breach b from its own), so every shard
sees the same ones and a fraudster can work cards of consumers in many shards.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pyarrow as pa

from cardworld.simulator import rng
from cardworld.simulator.kernels import fraud as kf
from cardworld.simulator.world_arrays import (
    COMPROMISE_KINDS,
    FRAUD_METHODS,
    WorldArrays,
    WorldLabels,
)
from cardworld.worlds import reference
from cardworld.worlds.schema import World, fraudster_count

METHODS = FRAUD_METHODS[kf.METHOD_OFFSET :]
DETECTED_BY = ("", "issuer", "cardholder")  # indexed by kernels.fraud.BY_*


class FraudArrays(NamedTuple):
    """Everything the fraud kernel reads. F fraudsters, M methods, B breaches."""

    f_start: np.ndarray  # (F,) day the career starts
    f_end: np.ndarray  # (F,) day after it ends
    f_pause_start: np.ndarray  # (F,) a pause (start == end when none)
    f_pause_end: np.ndarray
    f_city: np.ndarray  # (F,) home city index
    f_skill: np.ndarray  # (F,) 0..1: skilled fraudsters are flagged less
    f_method_weight: np.ndarray  # (F, M)
    f_days: np.ndarray  # (F, 7) bool working weekdays, Monday first
    f_hour_start: np.ndarray  # (F,) float hour
    f_hours: np.ndarray  # (F,) float hours per working day
    chain_breach_offsets: np.ndarray  # (C+1,) CSR of breaches by chain
    b_day: np.ndarray  # (B,) day of the breach
    b_window: np.ndarray  # (B,) days of exposure before it
    kind_methods: np.ndarray  # (4, M) bool: methods usable with each compromise kind
    m_counterfeit: np.ndarray  # (M,) bool
    m_online: np.ndarray  # (M,) bool
    m_attempts: np.ndarray  # (M,) float
    m_probes: np.ndarray
    m_span_days: np.ndarray
    m_amount_median: np.ndarray
    m_amount_sigma: np.ndarray
    m_detect: np.ndarray
    m_detect_delay_hours: np.ndarray
    m_type_offsets: np.ndarray  # (M+1,) CSR into m_types
    m_types: np.ndarray  # goods type indices
    skim_mcc: np.ndarray  # (n_mcc,) bool
    scalars: np.ndarray  # indexed by kernels.fraud.F_*


class Fraudsters(NamedTuple):
    arrays: FraudArrays
    table: pa.Table
    breaches: np.ndarray  # (B, 3): day, chain, window


def build_fraud(world: World, arrays: WorldArrays, labels: WorldLabels) -> Fraudsters:
    spec = world.spec.fraud
    seed = arrays.seed
    methods = [spec.methods[m] for m in METHODS]
    n_m = len(METHODS)
    fs = spec.fraudsters
    first, last = arrays.start_day - int(fs.careers_start_years_before * 365.2425), arrays.end_day
    n_f = fraudster_count(world.spec)
    cols: dict[str, list] = {
        k: []
        for k in (
            "start",
            "end",
            "pause_start",
            "pause_end",
            "city",
            "skill",
            "weights",
            "days",
            "hour",
            "hours",
        )
    }
    n_us = arrays.n_us_cities
    for f in range(n_f):
        st = rng.stream(seed, f, rng.FRAUDSTER)
        start = first + rng.integer(st, max(1, last - first))
        months = fs.career_months_median * float(np.exp(fs.career_months_sigma * rng.normal(st)))
        end = start + max(30, int(months * 30.44))
        pause_start = pause_end = start
        if rng.uniform(st) < fs.pause_probability:
            pause_start = start + rng.integer(st, max(1, end - start))
            pause_end = pause_start + int(rng.exponential(st, fs.pause_months_mean * 30.44))
            end += pause_end - pause_start
        foreign = rng.uniform(st) < fs.foreign_share and len(arrays.foreign_city_cum)
        city = (
            n_us + rng.choose(st, arrays.foreign_city_cum)
            if foreign
            else rng.choose(st, arrays.home_city_cum)
        )
        skill = rng.uniform(st)
        weights = [m.weight * rng.gamma(st, 1.0) for m in methods]
        n_days = int(min(7, max(1, round(fs.work_days_per_week_mean + rng.normal(st)))))
        days = np.zeros(7, bool)
        days[np.argsort([rng.uniform(st) for _ in range(7)])[:n_days]] = True
        hours = min(24.0, max(1.0, fs.work_hours_per_day_mean + 2.0 * rng.normal(st)))
        for key, value in zip(
            cols,
            (
                start,
                end,
                pause_start,
                pause_end,
                city,
                skill,
                weights,
                days,
                (24.0 - hours) * rng.uniform(st),  # a shift ends by midnight
                hours,
            ),
            strict=True,
        ):
            cols[key].append(value)

    # Breaches: a Poisson count over the period, each at a chain with stores.
    comp = spec.compromise
    bst = rng.stream(seed, 0, rng.BREACH)
    years = (arrays.end_day + 1 - arrays.start_day) / 365.2425
    store_weight = np.array([arrays.chain_density[c] for c in range(len(labels.chain_names))])
    n_b = rng.poisson(bst, comp.breaches_per_year * years)
    breaches = np.array(
        [
            (
                arrays.start_day + rng.integer(bst, max(1, arrays.end_day - arrays.start_day)),
                rng.choose(bst, np.cumsum(store_weight)),
                comp.breach_window_days,
            )
            for _ in range(n_b)
        ],
        dtype=np.int64,
    ).reshape(-1, 3)
    breaches = breaches[np.lexsort((breaches[:, 0], breaches[:, 1]))]
    chain_breach_offsets = np.searchsorted(
        breaches[:, 1], np.arange(len(labels.chain_names) + 1)
    ).astype(np.int64)

    kinds = {
        "breach": comp.breach_methods,
        "skimming": comp.skimming_methods,
        "phishing": comp.phishing_methods,
        "lost_stolen": comp.lost_stolen_methods,
    }
    kind_methods = np.array([[m in kinds[k] for m in METHODS] for k in COMPROMISE_KINDS])
    type_index = {t: i for i, t in enumerate(labels.type_names)}
    m_types = [np.array([type_index[t] for t in m.types], np.int64) for m in methods]
    mcc_slot = {m: i for i, m in enumerate(labels.mcc_codes)}
    skim = np.zeros(len(labels.mcc_codes), bool)
    skim[[mcc_slot[m] for m in comp.skim_mccs]] = True
    scalars = np.array(
        [
            comp.breach_card_probability,
            comp.breach_use_delay_days_mean,
            comp.skim_merchant_share_per_quarter,
            comp.skim_card_probability,
            comp.phishing_per_card_year,
            comp.lost_stolen_per_card_year,
            spec.error_multiplier,
            spec.reissue_days,
            spec.consumer_notices_probability,
            spec.consumer_report_days_mean,
            spec.lost_card_report_hours_mean,
        ],
        dtype=np.float64,
    )
    fa = FraudArrays(
        f_start=np.array(cols["start"], np.int64),
        f_end=np.array(cols["end"], np.int64),
        f_pause_start=np.array(cols["pause_start"], np.int64),
        f_pause_end=np.array(cols["pause_end"], np.int64),
        f_city=np.array(cols["city"], np.int64),
        f_skill=np.array(cols["skill"], np.float64),
        f_method_weight=np.array(cols["weights"], np.float64).reshape(n_f, n_m),
        f_days=np.array(cols["days"], np.bool_).reshape(n_f, 7),
        f_hour_start=np.array(cols["hour"], np.float64),
        f_hours=np.array(cols["hours"], np.float64),
        chain_breach_offsets=chain_breach_offsets,
        b_day=np.ascontiguousarray(breaches[:, 0]),
        b_window=np.ascontiguousarray(breaches[:, 2]),
        kind_methods=kind_methods,
        m_counterfeit=np.array([m == "counterfeit" for m in METHODS]),
        m_online=np.array([m.online for m in methods]),
        m_attempts=np.array([m.attempts_mean for m in methods]),
        m_probes=np.array([m.probes_mean for m in methods]),
        m_span_days=np.array([m.span_days for m in methods]),
        m_amount_median=np.array([m.amount_median for m in methods]),
        m_amount_sigma=np.array([m.amount_sigma for m in methods]),
        m_detect=np.array([m.detect_probability for m in methods]),
        m_detect_delay_hours=np.array([m.detect_delay_hours for m in methods]),
        m_type_offsets=np.cumsum([0] + [len(t) for t in m_types]).astype(np.int64),
        m_types=np.concatenate(m_types),
        skim_mcc=skim,
        scalars=scalars,
    )
    return Fraudsters(fa, _fraudsters_table(fa), breaches)


def _dates(days: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(days, "int32")).cast(pa.date32())


def _fraudsters_table(fa: FraudArrays) -> pa.Table:
    cities = reference.cities()
    weekdays = np.array(["mon", "tue", "wed", "thu", "fri", "sat", "sun"])
    share = fa.f_method_weight / fa.f_method_weight.sum(axis=1, keepdims=True)
    return pa.table(
        {
            "fraudster_id": pa.array(np.arange(len(fa.f_start)), pa.int64()),
            "home_city": cities.name[fa.f_city].tolist(),
            "home_state": cities.state[fa.f_city].tolist(),
            "home_country": cities.country[fa.f_city].tolist(),
            "skill": fa.f_skill,
            "methods": [[METHODS[m] for m in np.argsort(-row) if row[m] > 0.05] for row in share],
            "method_shares": [row.round(3).tolist() for row in share],
            "work_days": [weekdays[row].tolist() for row in fa.f_days],
            "work_hours_start": fa.f_hour_start.round(2),
            "work_hours_per_day": fa.f_hours.round(2),
            "active_from": _dates(fa.f_start),
            "active_to": _dates(fa.f_end),
            "pause_from": pa.array(
                np.asarray(fa.f_pause_start, "int32"), mask=fa.f_pause_start == fa.f_pause_end
            ).cast(pa.date32()),
            "pause_to": pa.array(
                np.asarray(fa.f_pause_end, "int32"), mask=fa.f_pause_start == fa.f_pause_end
            ).cast(pa.date32()),
        }
    )


def _seconds_to_timestamps(seconds: np.ndarray, missing: np.ndarray | None = None) -> pa.Array:
    return pa.array(np.asarray(seconds, np.int64) * 1_000_000, pa.int64(), mask=missing).cast(
        pa.timestamp("us")
    )


def compromises_table(records: np.ndarray, breaches: np.ndarray) -> pa.Table:
    """Rows of compromises.parquet: what exposed each card, who used it, how it ended."""
    r = records
    kind = r[:, kf.K_KIND]
    is_breach = kind == kf.BREACH
    is_skim = kind == kf.SKIMMING
    unused = r[:, kf.K_FRAUDSTER] < 0  # the data was never used inside the period
    breach_row = np.where(is_breach, r[:, kf.K_SOURCE], 0)
    breach_days = breaches[breach_row, 0] if len(breaches) else np.zeros(len(r), np.int64)
    return pa.table(
        {
            "compromise_id": pa.array(r[:, kf.K_ID], pa.int64()),
            "card_id": pa.array(r[:, kf.K_CARD], pa.int64()),
            "consumer_id": pa.array(r[:, kf.K_CONSUMER], pa.int64()),
            "kind": pa.array(
                np.array(COMPROMISE_KINDS, dtype=object)[kind].tolist(), pa.string()
            ).dictionary_encode(),
            "compromised_at": _seconds_to_timestamps(r[:, kf.K_TIME]),
            "breach_id": pa.array(r[:, kf.K_SOURCE], pa.int64(), mask=~is_breach),
            "breach_date": pa.array(breach_days.astype("int32"), mask=~is_breach).cast(pa.date32()),
            "merchant_id": pa.array(r[:, kf.K_SOURCE], pa.int64(), mask=~is_skim),
            "fraudster_id": pa.array(r[:, kf.K_FRAUDSTER], pa.int64(), mask=unused),
            "method": pa.array(
                np.array(FRAUD_METHODS, dtype=object)[r[:, kf.K_METHOD]].tolist(),
                pa.string(),
                mask=unused,
            ).dictionary_encode(),
            "first_use": _seconds_to_timestamps(np.maximum(r[:, kf.K_FIRST_USE], 0), unused),
            "attempts": pa.array(r[:, kf.K_ATTEMPTS], pa.int32()),
            "blocked_at": _seconds_to_timestamps(
                np.maximum(r[:, kf.K_BLOCKED_AT], 0), r[:, kf.K_BLOCKED_AT] < 0
            ),
            "detected_by": pa.array(
                np.array(DETECTED_BY, dtype=object)[r[:, kf.K_DETECTED_BY]].tolist(),
                pa.string(),
                mask=r[:, kf.K_DETECTED_BY] == kf.BY_NOBODY,
            ),
        }
    )
