"""The fraud kernel: compromised cards, the fraudsters who use them, and the issuer's response.

Per consumer, after the legitimate purchases are drawn:
1. find the consumer's card compromises: chain breaches (the card was used at the chain
   in the weeks before a breach), skimmers (a swipe at a merchant that has one that
   quarter), phishing and lost or stolen cards (per card-year hazards);
2. in time order, hand each compromised card to a fraudster active then, who uses it
   with one of their methods on their schedule and in their places;
3. the issuer flags fraud with a method-dependent probability and delay, the cardholder
   may report it; a flagged card is blocked (later attempts decline with "Card Blocked")
   and replaced with a new card a few days later, which takes over its purchases.

Every draw comes from the card's own streams, so shards stay independent.
"""

from __future__ import annotations

import math

import numpy as np

from cardworld.simulator import rng
from cardworld.simulator.kernels.calendar import civil_from_days, weekday
from cardworld.simulator.kernels.jit import kernel
from cardworld.simulator.kernels.purchases import (
    C_CARD,
    C_CENTS,
    C_CHANNEL,
    C_COMPROMISE,
    C_CONSUMER,
    C_ERROR,
    C_FRAUD,
    C_FRAUDSTER,
    C_MCC_SLOT,
    C_MERCHANT,
    C_METHOD,
    C_SEQ,
    C_TIME,
    CARD_BLOCKED,
    CHAIN_STORE,
    CHIP,
    KIND_SHIFT,
    N_COLUMNS,
    ONLINE,
    SWIPE,
    attempt_error,
    doubled,
    emit,
    grow,
    pick_mcc,
    pick_online,
    pick_store,
    sort_rows,
    stable_order,
    state_on,
    year_index,
)

NEVER = np.iinfo(np.int64).max
FRAUD_BY_FRAUDSTER = 2
BREACH, SKIMMING, PHISHING, LOST_STOLEN = 0, 1, 2, 3
METHOD_OFFSET = 2  # method m is FRAUD_METHODS[m + 2] ("" and "random" come first)
BY_NOBODY, BY_ISSUER, BY_CARDHOLDER = 0, 1, 2
COMPROMISE_STREAM_BASE = 1 << 20

# Columns of the compromise records.
K_ID, K_CARD, K_CONSUMER, K_KIND, K_TIME, K_SOURCE, K_FRAUDSTER, K_METHOD = 0, 1, 2, 3, 4, 5, 6, 7
K_FIRST_USE, K_ATTEMPTS, K_BLOCKED_AT, K_DETECTED_BY = 8, 9, 10, 11
N_K = 12

# Indices into the fraud scalars.
F_BREACH_P, F_BREACH_DELAY, F_SKIM_SHARE, F_SKIM_P, F_PHISHING, F_LOST = 0, 1, 2, 3, 4, 5
F_ERROR_MULT, F_REISSUE_DAYS, F_NOTICE_P, F_REPORT_DAYS, F_LOST_REPORT_HOURS = 6, 7, 8, 9, 10


@kernel(allocates=False)
def _fraudster_active(fw, f, day):
    if day < fw.f_start[f] or day >= fw.f_end[f]:
        return False
    return not (fw.f_pause_start[f] <= day < fw.f_pause_end[f])


@kernel(allocates=False)
def _at_work(fw, f, t):
    """Whether moment t (seconds) falls in fraudster f's working hours on a working day."""
    hour = (t % 86400) / 3600.0
    start = fw.f_hour_start[f]
    return fw.f_days[f, weekday(t // 86400)] and start <= hour < start + fw.f_hours[f]


@kernel(allocates=False)
def _work_time(st, fw, f, t):
    """A moment in fraudster f's working hours on a working day, at or after t (seconds)."""
    day = t // 86400
    for _ in range(15):
        if fw.f_days[f, weekday(day)]:
            hour = fw.f_hour_start[f] + rng.uniform(st) * fw.f_hours[f]  # shifts end by midnight
            candidate = day * 86400 + int(hour * 3600)
            if candidate >= t:
                return candidate
        day += 1
    return t


@kernel(allocates=False)
def _method_weights(fw, f, kind, counterfeit_works, out):
    """Fill out (M,) with fraudster f's weights for the methods usable with `kind`; return the sum.

    counterfeit_works: the chance a cloned stripe gets through (1 without a chip card).
    """
    total = 0.0
    for m in range(out.shape[0]):
        weight = 0.0
        if fw.kind_methods[kind, m]:
            weight = fw.f_method_weight[f, m] * (counterfeit_works if fw.m_counterfeit[m] else 1.0)
        out[m] = weight
        total += weight
    return total


@kernel
def _choose_fraudster(st, fw, w, kind, day, card_chip_from):
    """A fraudster active on `day` and a method allowed for `kind`; (-1, -1) if none."""
    y = year_index(w, civil_from_days(day)[0])
    counterfeit_works = 1.0 - w.chip_terminal_share[y] if card_chip_from <= day else 1.0
    n_f, n_m = fw.f_method_weight.shape
    weights = np.zeros(n_f)
    methods = np.zeros(n_m)
    for f in range(n_f):
        if _fraudster_active(fw, f, day):
            weights[f] = _method_weights(fw, f, kind, counterfeit_works, methods)
    if weights.sum() <= 0.0:
        return -1, -1
    f = rng.choose(st, np.cumsum(weights))
    _method_weights(fw, f, kind, counterfeit_works, methods)
    return f, rng.choose(st, np.cumsum(methods))


@kernel(allocates=False)
def _add_compromise(comps, n, card, kind, t, source):
    """Record a compromise unless the same (card, kind, source) is already there."""
    for j in range(n):
        if comps[j, 0] == card and comps[j, 1] == kind and comps[j, 3] == source:
            return n
    if n >= comps.shape[0]:
        return n
    comps[n, 0], comps[n, 1], comps[n, 2], comps[n, 3] = card, kind, t, source
    return n + 1


@kernel
def _record(
    records, n, comp_id, card, cid, kind, t0, source, f, m, first_use, attempts, block, by, end_t
):
    """Append one compromise record (growing the matrix when full); unused data has f = -1."""
    if n >= records.shape[0]:
        records = doubled(records, n)
    rec = records[n]
    rec[K_ID], rec[K_CARD], rec[K_CONSUMER], rec[K_KIND] = comp_id, card, cid, kind
    rec[K_TIME], rec[K_SOURCE], rec[K_FRAUDSTER] = t0, source, f
    rec[K_METHOD] = m + METHOD_OFFSET if f >= 0 else 0
    rec[K_FIRST_USE], rec[K_ATTEMPTS] = first_use, attempts
    rec[K_BLOCKED_AT] = block if block < end_t else -1
    rec[K_DETECTED_BY] = by if block < end_t else BY_NOBODY
    return records


@kernel
def simulate_fraud(
    w,
    fw,
    rows,
    n_rows,
    consumer_ids,
    home_city,
    card_offsets,
    card_id,
    card_kind,
    card_open,
    card_chip_from,
    seg_offsets,
    seg_start,
    seg_end,
    seg_state,
    out,
):
    """Compromises, fraudster transactions, blocks and replacement cards of a shard.

    w: WorldArrays; fw: FraudArrays. rows: (N_COLUMNS, capacity) int64 whose first n_rows
    columns are the legitimate and random-fraud transactions, sorted by consumer then time.
    consumer_ids, home_city: (n,) int64. Cards CSR as in simulate_purchases; segments CSR
    (offsets (n+1,), start/end/state per segment). out: (N_COLUMNS, capacity) int64 room
    for the fraudsters' rows (grown here if they need more).
    Returns (rows', n_rows', compromises (k, N_K) int64, replacements (p, 4) int64: old card
    index, new card id, opened day, owner index): the fraudsters' rows merged into `rows`
    (grown, a new array, if they do not fit), whose first n_rows' columns are then all the
    shard's transactions sorted by consumer then time.

    NOTE: a consumer's rows change in place (those on a blocked card) and only consumers a
    fraudster met get rows added, so the rows are not copied to a second matrix: one merge
    at the end moves each consumer's rows up by the fraudsters' rows before it (fraud_rows).
    A second shard-sized matrix cost its page faults once in each worker, 0.3 s, and the
    copy 15-20 ms a block.
    """
    s = fw.scalars
    n_out = 0
    out_start = np.zeros(consumer_ids.shape[0] + 1, np.int64)  # consumer i's rows in out
    records = np.empty((256, N_K), np.int64)
    n_rec = 0
    replacements = np.empty((64, 4), np.int64)
    n_rep = 0
    comps = np.empty((64, 4), np.int64)  # card index, kind, time (s), source
    scratch = np.zeros(2, np.uint64)  # a stream, reseeded per draw
    row_end = np.searchsorted(rows[C_CONSUMER, :n_rows], consumer_ids, side="right")
    row_start = np.searchsorted(rows[C_CONSUMER, :n_rows], consumer_ids, side="left")
    end_t = (w.end_day + 1) * 86400
    online_peak = max(1e-9, w.online_multiplier.max())
    for i in range(consumer_ids.shape[0]):
        cid = consumer_ids[i]
        ca, cb = card_offsets[i], card_offsets[i + 1]
        r0, r1 = row_start[i], row_end[i]
        block_start = n_out
        # 1. Compromises seen in the consumer's own purchases: breaches and skimmers.
        n_comp = _seen_compromises(w, fw, rows, r0, r1, cid, ca, card_id, comps, scratch)
        # Phishing and lost or stolen cards: hazards over each card's life.
        for c in range(ca, cb):
            st = rng.stream(w.seed, card_id[c], rng.COMPROMISE, 2 * COMPROMISE_STREAM_BASE)
            first = max(card_open[c], w.start_day)
            life_years = max(0.0, (w.end_day + 1 - first) / 365.2425)
            for kind in (PHISHING, LOST_STOLEN):
                # Phishing grows with online shopping: thin a process at the peak online rate.
                peak = online_peak if kind == PHISHING else 1.0
                rate = (s[F_PHISHING] if kind == PHISHING else s[F_LOST]) * peak
                for _ in range(rng.poisson(st, rate * life_years)):
                    t = first * 86400 + int(rng.uniform(st) * life_years * 365.2425 * 86400)
                    if kind == PHISHING:
                        y = year_index(w, civil_from_days(t // 86400)[0])
                        if rng.uniform(st) * peak >= w.online_multiplier[y]:
                            continue
                    n_comp = _add_compromise(comps, n_comp, c, kind, t, t)
        order = stable_order(comps[:n_comp, 2])

        # 2-3. Each compromise in time order: a fraudster uses the card until it is blocked.
        blocked = np.full(cb - ca, NEVER, np.int64)
        for j in order:
            c, kind, t0, source = comps[j, 0], comps[j, 1], comps[j, 2], comps[j, 3]
            if t0 >= blocked[c - ca] or t0 >= end_t:
                continue
            st = rng.stream(w.seed, card_id[c], rng.COMPROMISE, 3 * COMPROMISE_STREAM_BASE + j)
            if kind == BREACH:
                use = t0 + int(rng.exponential(st, s[F_BREACH_DELAY]) * 86400)
            elif kind == LOST_STOLEN:
                use = t0 + int(rng.exponential(st, 3.0) * 3600)
            else:
                use = t0 + int(rng.exponential(st, 3.0) * 86400)
            f, m = (
                (-1, -1)
                if use >= end_t
                else _choose_fraudster(st, fw, w, kind, use // 86400, card_chip_from[c])
            )
            comp_id = card_id[c] * 100 + j
            first_use, n_done, block, by = -1, 0, NEVER, BY_NOBODY
            if f >= 0:
                attempts = 1 + rng.poisson(st, fw.m_attempts[m] - 1.0)
                probes = rng.poisson(st, fw.m_probes[m])
                t = use if kind == LOST_STOLEN else _work_time(st, fw, f, use)
                first_use = t
                issuer_block = NEVER
                report = NEVER
                if kind == LOST_STOLEN:  # the holder misses the card, fraud or not
                    report = t0 + int(rng.exponential(st, s[F_LOST_REPORT_HOURS]) * 3600)
                elif rng.uniform(st) < s[F_NOTICE_P]:
                    report = t + int(rng.exponential(st, s[F_REPORT_DAYS]) * 86400)
                n_done = 0
                out = grow(out, n_out, attempts + probes + 1)
                for a in range(probes + attempts):
                    if kind != LOST_STOLEN and not _at_work(fw, f, t):
                        t = _work_time(st, fw, f, t)
                    block = min(issuer_block, report, blocked[c - ca])
                    if t >= end_t or not _fraudster_active(fw, f, t // 86400):
                        break  # the period, or the fraudster's career, is over
                    day = t // 86400
                    y = year_index(w, civil_from_days(day)[0])
                    k = fw.m_types[
                        fw.m_type_offsets[m]
                        + rng.integer(st, fw.m_type_offsets[m + 1] - fw.m_type_offsets[m])
                    ]
                    mcc = pick_mcc(st, w, k)
                    online = fw.m_online[m] or not w.mcc_card_present[mcc]
                    if online:
                        merchant, city, channel = pick_online(st, w, mcc, 0.6), -1, ONLINE
                    else:
                        city = home_city[i] if kind == LOST_STOLEN else fw.f_city[f]
                        merchant = pick_store(st, w, city, mcc)
                        chip_card = card_chip_from[c] <= day
                        reads_chip = rng.uniform(st) < w.chip_terminal_share[y]
                        if fw.m_counterfeit[m] and chip_card and reads_chip:
                            t += 3600 + int(rng.exponential(st, 7200.0))
                            continue  # a chip terminal refuses the clone: the fraudster moves on
                        channel = CHIP if chip_card and reads_chip else SWIPE
                    if a < probes:
                        cents = 50 + rng.integer(st, 450)
                    else:
                        amount = (
                            fw.m_amount_median[m]
                            * math.exp(fw.m_amount_sigma[m] * rng.normal(st))
                            * w.price_level[y]
                        )
                        cents = max(1, int(round(amount * 100.0)))
                    if t >= block:
                        error = CARD_BLOCKED
                    else:
                        error = attempt_error(st, w, card_kind[c], channel, s[F_ERROR_MULT])
                    state = state_on(
                        seg_start, seg_end, seg_state, seg_offsets[i], seg_offsets[i + 1], day
                    )
                    emit(out, n_out, t, cid, card_id[c], merchant, mcc, k, cents, channel,
                         error, FRAUD_BY_FRAUDSTER, state, city)  # fmt: skip
                    out[C_FRAUDSTER, n_out] = f
                    out[C_COMPROMISE, n_out] = comp_id
                    out[C_METHOD, n_out] = m + METHOD_OFFSET
                    n_out += 1
                    n_done += 1
                    if error == CARD_BLOCKED:
                        break  # the decline tells the fraudster the card is dead
                    if error == 0 and a >= probes and issuer_block == NEVER:
                        p_detect = fw.m_detect[m] * (1.0 - 0.5 * fw.f_skill[f])
                        if rng.uniform(st) < p_detect:
                            issuer_block = (
                                t
                                + 60
                                + int(rng.exponential(st, fw.m_detect_delay_hours[m] * 3600.0))
                            )
                    gap = fw.m_span_days[m] * 86400.0 / max(1.0, probes + attempts)
                    if a < probes:
                        gap = 120.0
                    t += 60 + int(rng.exponential(st, gap))
                if n_done == 0 and kind != LOST_STOLEN:
                    # Nothing reached the statement (every clone refused, or the fraudster
                    # stopped): nothing to report. A lost card is missed for itself.
                    report = NEVER
                block = min(issuer_block, report)
                by = BY_NOBODY
                if block < NEVER:
                    by = BY_ISSUER if issuer_block <= report else BY_CARDHOLDER
                    blocked[c - ca] = min(blocked[c - ca], block)
            records = _record(
                records,
                n_rec,
                comp_id,
                card_id[c],
                cid,
                kind,
                t0,
                source,
                f,
                m,
                first_use,
                n_done,
                block,
                by,
                end_t,
            )
            n_rec += 1

        # 4. Blocked cards: replacements take over; attempts in between decline.
        next_slot = cb - ca
        replacement = np.full(cb - ca, -1, np.int64)
        replacement_open = np.full(cb - ca, NEVER, np.int64)
        renewed = False
        for c in range(ca, cb):
            if blocked[c - ca] < end_t:
                renewed = True
                open_day = blocked[c - ca] // 86400 + 1 + int(s[F_REISSUE_DAYS])
                replacement[c - ca] = cid * 100 + next_slot
                replacement_open[c - ca] = open_day * 86400
                next_slot += 1
                if n_rep >= replacements.shape[0]:
                    replacements = doubled(replacements, n_rep)
                replacements[n_rep, 0], replacements[n_rep, 1] = c, replacement[c - ca]
                replacements[n_rep, 2], replacements[n_rep, 3] = open_day, i
                n_rep += 1
        # An episode drawn before a later compromise's block was known declines after it.
        for r in range(block_start, n_out):
            c = ca + (out[C_CARD, r] - cid * 100)
            if out[C_TIME, r] >= blocked[c - ca]:
                out[C_ERROR, r] = CARD_BLOCKED
        if renewed:  # rows after a block: moved to the new card or declined
            if _block_rows(rows, r0, r1, cid, ca, blocked, replacement, replacement_open, end_t):
                sort_rows(rows, r0, r1)  # a credit waited for the new card: back in time order
        if n_out > block_start:
            sort_rows(out, block_start, n_out)
        out_start[i + 1] = n_out
    rows = grow(rows, n_rows, n_out)
    _merge_fraud_rows(rows, row_start, row_end, out, out_start)
    return rows, n_rows + n_out, records[:n_rec], replacements[:n_rep]


@kernel(allocates=False)
def _seen_compromises(w, fw, rows, r0, r1, cid, ca, card_id, comps, st):
    """Breaches and skimmers among a consumer's rows [r0, r1): compromises into comps; the count.

    st: a scratch stream, reseeded for each draw (each draw is a pure function of its key).
    """
    s = fw.scalars
    n_comp = 0
    for r in range(r0, r1):
        if rows[C_FRAUD, r] != 0 or rows[C_ERROR, r] != 0:
            continue
        c = ca + (rows[C_CARD, r] - cid * 100)
        merchant = rows[C_MERCHANT, r]
        day = rows[C_TIME, r] // 86400
        if (merchant >> KIND_SHIFT) == CHAIN_STORE:
            chain = (merchant >> 40) & 0x3FFFF
            for b in range(fw.chain_breach_offsets[chain], fw.chain_breach_offsets[chain + 1]):
                bday = fw.b_day[b]
                if bday - fw.b_window[b] <= day <= bday:
                    rng.reseed(st, w.seed, card_id[c], rng.COMPROMISE, b)
                    if rng.uniform(st) < s[F_BREACH_P]:
                        n_comp = _add_compromise(comps, n_comp, c, BREACH, bday * 86400 + 43200, b)
        if rows[C_CHANNEL, r] == SWIPE and fw.skim_mcc[rows[C_MCC_SLOT, r]]:
            quarter = day // 91
            rng.reseed(st, w.seed, merchant, rng.COMPROMISE, quarter)
            if rng.uniform(st) < s[F_SKIM_SHARE]:
                rng.reseed(st, w.seed, card_id[c], rng.COMPROMISE, COMPROMISE_STREAM_BASE + quarter)
                if rng.uniform(st) < s[F_SKIM_P]:
                    n_comp = _add_compromise(comps, n_comp, c, SKIMMING, rows[C_TIME, r], merchant)
    return n_comp


@kernel(allocates=False)
def _block_rows(rows, r0, r1, cid, ca, blocked, replacement, replacement_open, end_t):
    """A consumer's rows [r0, r1) on blocked cards, in place: moved to the replacement card
    once it is open, declined in between, except a merchant's credit, which posts to the new
    card on the day it opens (at the credit's time of day), or declines if that is not
    before end_t. Returns whether a credit was moved later, so the rows may need sorting
    again."""
    moved = False
    for r in range(r0, r1):
        c = ca + (rows[C_CARD, r] - cid * 100)
        t = rows[C_TIME, r]
        if t >= blocked[c - ca]:
            opens = replacement_open[c - ca]
            posts = max(t, opens + t % 86400) if rows[C_CENTS, r] < 0 else t
            if rows[C_FRAUD, r] == 0 and posts >= opens and posts < end_t:
                rows[C_CARD, r] = replacement[c - ca]
                moved |= posts != t
                rows[C_TIME, r] = posts
            else:
                rows[C_ERROR, r] = CARD_BLOCKED
    return moved


@kernel(allocates=False)
def _merge_fraud_rows(rows, row_start, row_end, out, out_start):
    """Merge each consumer's fraudster rows out[:, out_start[i]:out_start[i + 1]] (in time
    order) into its rows rows[:, row_start[i]:row_end[i]], in place: consumer i's rows end
    up at rows[:, row_start[i] + out_start[i]:row_end[i] + out_start[i + 1]], in time order,
    fraudster rows first on ties (as a stable sort of fraudster rows then the others), and
    numbered from 0 where rows were added. rows must have room for all of out's rows.
    """
    # NOTE: from the last consumer back, so every row moves up into room already vacated.
    for i in range(row_start.shape[0] - 1, -1, -1):
        r0, r1 = row_start[i], row_end[i]
        before, stop = out_start[i], out_start[i + 1]
        if stop == before:
            if before > 0:
                for col in range(N_COLUMNS):
                    line = rows[col]
                    for r in range(r1 - 1, r0 - 1, -1):
                        line[r + before] = line[r]
            continue
        r, x = r1 - 1, stop - 1
        for dest in range(r1 + stop - 1, r0 + before - 1, -1):
            # The consumer's own row when it is later, or as late (it sorts after on ties).
            if r >= r0 and (x < before or rows[C_TIME, r] >= out[C_TIME, x]):
                for col in range(N_COLUMNS):
                    rows[col, dest] = rows[col, r]
                r -= 1
            else:
                for col in range(N_COLUMNS):
                    rows[col, dest] = out[col, x]
                x -= 1
        for dest in range(r0 + before, r1 + stop):
            rows[C_SEQ, dest] = dest - r0 - before
