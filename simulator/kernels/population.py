"""Population kernels: consumers from a Gaussian copula, and their cards."""

from __future__ import annotations

import math

import numpy as np

from cardworld.simulator import rng
from cardworld.simulator.kernels.calendar import civil_from_days
from cardworld.simulator.kernels.jit import kernel

NEVER = np.iinfo(np.int64).max
DAYS_PER_YEAR = 365.2425


@kernel
def _phi(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


@kernel
def sample_consumers(
    consumer_ids,
    seed,
    chol,
    age_cum,
    age_from,
    age_to,
    reference_day,
    female_share,
    income_median,
    income_sigma,
    credit_mean,
    credit_sd,
    retirement_mean,
    retirement_sd,
    home_city_cum,
):
    """Draw each consumer's demographics from its own stream.

    consumer_ids: (n,) int64. chol: (3, 3) float64 Cholesky factor of the copula's
    correlation over (age, income, credit score). age_cum, age_from, age_to: (b,) band
    cumulative shares (float64) and inclusive bounds (int64). home_city_cum: (c,) float64
    cumulative home weights of US cities (simulator/home_cities.py).
    Returns birth_day (n,) int64, female (n,) bool, income (n,) float64,
    credit_score (n,) int16, home_city (n,) int64, retirement_day (n,) int64.
    """
    n = consumer_ids.shape[0]
    birth_day = np.empty(n, np.int64)
    female = np.empty(n, np.bool_)
    income = np.empty(n, np.float64)
    credit = np.empty(n, np.int16)
    home = np.empty(n, np.int64)
    retirement_day = np.empty(n, np.int64)
    z = np.empty(3)
    for i in range(n):
        st = rng.stream(seed, consumer_ids[i], rng.POPULATION)
        e0, e1, e2 = rng.normal(st), rng.normal(st), rng.normal(st)
        for r in range(3):
            z[r] = chol[r, 0] * e0 + chol[r, 1] * e1 + chol[r, 2] * e2
        # Age: the inverse CDF of a piecewise-uniform distribution over census bands.
        u = _phi(z[0]) * age_cum[-1]
        band = rng.bisect_right(age_cum, 0, age_cum.shape[0], u)
        low = age_cum[band - 1] if band > 0 else 0.0
        within = (u - low) / max(age_cum[band] - low, 1e-12)
        age = age_from[band] + within * (age_to[band] + 1 - age_from[band])
        birth_day[i] = reference_day - int(age * DAYS_PER_YEAR)
        income[i] = round(income_median * math.exp(income_sigma * z[1]), 0)
        credit[i] = int(min(850.0, max(300.0, round(credit_mean + credit_sd * z[2]))))
        female[i] = rng.uniform(st) < female_share
        home[i] = rng.choose(st, home_city_cum)
        retire_age = retirement_mean + retirement_sd * rng.normal(st)
        retirement_day[i] = birth_day[i] + int(retire_age * DAYS_PER_YEAR)
    return birth_day, female, income, credit, home, retirement_day


@kernel
def sample_cards(
    consumer_ids,
    seed,
    income,
    adult_day,
    start_day,
    end_day,
    extra_mean,
    extra_elasticity,
    income_median,
    kind_cum,
    brand_cum,
    credit_brand_only,
    opened_before_days,
    validity_days,
    chip_card_share,
    first_year,
    limit_median,
    limit_elasticity,
    max_cards,
):
    """Draw each consumer's cards from its own stream.

    consumer_ids, adult_day: (n,) int64; income: (n,) float64. kind_cum: (3,) cumulative
    shares of (credit, debit, prepaid); brand_cum: (4,) of (visa, mastercard, amex,
    discover); credit_brand_only: (4,) bool, brands that issue only credit cards.
    chip_card_share: (y,) float64 by year from first_year.
    Returns per card (m,): owner index int64, slot int64, kind int8, brand int8,
    opened int64 (day), chip_from int64 (day, NEVER if no chip by the end),
    expires int64 (day of the plastic current at the end), limit float64,
    pan int64, cvv int16.
    """
    n = consumer_ids.shape[0]
    counts = np.empty(n, np.int64)
    states = np.empty((n, 2), np.uint64)
    for i in range(n):
        st = rng.stream(seed, consumer_ids[i], rng.CARDS)
        mean = extra_mean * (income[i] / income_median) ** extra_elasticity
        counts[i] = min(1 + rng.poisson(st, mean), max_cards)
        states[i, 0], states[i, 1] = st[0], st[1]
    m = int(counts.sum())
    owner = np.empty(m, np.int64)
    slot = np.empty(m, np.int64)
    kind = np.empty(m, np.int8)
    brand = np.empty(m, np.int8)
    opened = np.empty(m, np.int64)
    chip_from = np.empty(m, np.int64)
    expires = np.empty(m, np.int64)
    limit = np.empty(m, np.float64)
    pans = np.empty(m, np.int64)
    cvv = np.empty(m, np.int16)
    other_brands = brand_cum.copy()
    k = 0
    for i in range(n):
        st = states[i].copy()
        earliest = max(adult_day[i], start_day - opened_before_days)
        for j in range(counts[i]):
            owner[k], slot[k] = i, j
            kind[k] = rng.choose(st, kind_cum)
            if kind[k] == 0:
                brand[k] = rng.choose(st, brand_cum)
            else:
                # Debit and prepaid cards carry only brands that issue them.
                prev = 0.0
                for b in range(4):
                    w = (
                        0.0
                        if credit_brand_only[b]
                        else brand_cum[b] - (brand_cum[b - 1] if b > 0 else 0.0)
                    )
                    prev += w
                    other_brands[b] = prev
                brand[k] = rng.choose(st, other_brands)
            u = rng.uniform(st)
            if j == 0 or u < 0.5:
                opened[k] = max(adult_day[i], start_day - int(rng.uniform(st) * opened_before_days))
            else:
                opened[k] = earliest + int(rng.uniform(st) * max(1, end_day - earliest))
            # Each reissue may bring a chip, as issuers migrated plastics year by year.
            chip_from[k] = NEVER
            issue = opened[k]
            while issue <= end_day:
                year = civil_from_days(issue)[0] - first_year
                share = chip_card_share[min(max(year, 0), chip_card_share.shape[0] - 1)]
                if rng.uniform(st) < share:
                    chip_from[k] = issue
                    break
                issue += validity_days
            cycles = max(0, end_day - opened[k]) // validity_days + 1
            expires[k] = opened[k] + cycles * validity_days
            scale = (income[i] / income_median) ** limit_elasticity
            if kind[k] == 0:
                limit[k] = round(limit_median * scale * math.exp(0.5 * rng.normal(st)), -2)
            elif kind[k] == 1:
                limit[k] = round(income[i] / 12.0 * math.exp(0.5 * rng.normal(st)), 0)
            else:
                limit[k] = round(50.0 + 450.0 * rng.uniform(st), 0)
            pans[k] = pan(st, brand[k])
            cvv[k] = rng.integer(st, 9000 if brand[k] == 2 else 900) + (
                1000 if brand[k] == 2 else 100
            )
            k += 1
    return owner, slot, kind, brand, opened, chip_from, expires, limit, pans, cvv


@kernel
def pan(st, brand):
    """A Luhn-valid card number with the brand's prefix and length."""
    if brand == 0:
        prefix, length = 4, 16
    elif brand == 1:
        prefix, length = 51 + rng.integer(st, 5), 16
    elif brand == 2:
        prefix, length = 34 if rng.uniform(st) < 0.5 else 37, 15
    else:
        prefix, length = 6011, 16
    digits = np.zeros(length, np.int64)
    p = prefix
    n_prefix = 0
    while p > 0:
        n_prefix += 1
        p //= 10
    p = prefix
    for d in range(n_prefix - 1, -1, -1):
        digits[d] = p % 10
        p //= 10
    for d in range(n_prefix, length - 1):
        digits[d] = rng.integer(st, 10)
    total = 0
    for d in range(length - 1):
        v = digits[length - 2 - d]
        if d % 2 == 0:
            v *= 2
            if v > 9:
                v -= 9
        total += v
    digits[length - 1] = (10 - total % 10) % 10
    out = 0
    for d in range(length):
        out = out * 10 + digits[d]
    return out
