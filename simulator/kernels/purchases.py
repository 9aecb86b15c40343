"""The purchase kernel: every transaction of a shard's consumers, day by day.

For each consumer: draw a personal profile (rate and typical ticket per goods type)
from the population's distributions, then walk the days of the consumer's active
period. The day's expected count is the personal rates modulated by weekday, month,
holiday, travel state, retirement, shocks and the year's drift; purchases pick a type,
an hour, a channel, a merchant (favourites near home, or anywhere in the current city),
an amount (sometimes a round sum), a card, maybe an error, maybe a later refund. Monthly
bills come on their own days, and random fraud episodes are laid on top. Rows of one
consumer are sorted by time before they are emitted.

Transactions go to one int64 matrix, a row per field (C_* below) and a column per
transaction, so each field is contiguous for Arrow; the caller allocates it and grows it.
"""

from __future__ import annotations

import math

import numpy as np

from cardworld.simulator import rng
from cardworld.simulator.kernels.jit import kernel
from cardworld.worlds.reference import CLOSED, HOLIDAY

# Columns of the output matrix.
C_TIME, C_CONSUMER, C_CARD, C_MERCHANT, C_MCC_SLOT, C_TYPE, C_CENTS = 0, 1, 2, 3, 4, 5, 6
C_CHANNEL, C_ERROR, C_FRAUD, C_STATE, C_CITY, C_SEQ = 7, 8, 9, 10, 11, 12
C_FRAUDSTER, C_COMPROMISE, C_METHOD = 13, 14, 15  # -1 / -1 / 0 when not fraud by a fraudster
N_COLUMNS = 16
CARD_BLOCKED = 8  # index of "Card Blocked" in world_arrays.ERRORS

SWIPE, CHIP, ONLINE = 0, 1, 2
ON_FILE = 3  # attempt_error's channel for a charge to a card on file (a bill): ONLINE in the ledger
FRAUD_RANDOM = 1

# Merchant ids carry their own address: kind in the top bits, then city / chain / MCC / slot.
KIND_SHIFT = 58
LOCAL, CHAIN_STORE, CHAIN_ONLINE, INDEPENDENT_ONLINE = 1, 2, 3, 4
N_STATES, N_MONTHS, N_WEEKDAYS = 4, 12, 7
N_DAY_KINDS = CLOSED + 1  # reference.ORDINARY, HOLIDAY, CLOSED
# Kinds of day: retired or not, state, month, weekday, kind of day, then the day's shock
# (WorldArrays.shock_day; a world has its own number of them).
N_COMBOS = 2 * N_STATES * N_MONTHS * N_WEEKDAYS * N_DAY_KINDS

# Indices into the scalars array (see world_arrays.SCALARS).
(
    S_FAV_SHARE,
    S_FAV_COUNT,
    S_INDEP_ONLINE,
    S_PERSONAL_SIGMA,
    S_ERR_BALANCE,
    S_ERR_PIN,
    S_ERR_GLITCH,
    S_ERR_CVV,
    S_ERR_EXPIRATION,
    S_ERR_CARD_NUMBER,
    S_ERR_ZIP,
    S_REFUND_DELAY,
    S_REFUND_ONLINE,
    S_FRAUD_RATE,
    S_FRAUD_BURST,
    S_FRAUD_ONLINE,
    S_FRAUD_MEDIAN,
    S_FRAUD_SIGMA,
    S_INCOME_MEDIAN,
    S_FULL_PAYMENT,
    S_AWARENESS,
    S_RETRY,
    S_RETRY_DELAY,
) = range(23)


@kernel(allocates=False)
def local_id(city, mcc_slot, k):
    return (LOCAL << KIND_SHIFT) | (city << 32) | (mcc_slot << 20) | k


@kernel(allocates=False)
def chain_store_id(chain, city, k):
    return (CHAIN_STORE << KIND_SHIFT) | (chain << 40) | (city << 20) | k


@kernel(allocates=False)
def chain_online_id(chain):
    return (CHAIN_ONLINE << KIND_SHIFT) | chain


@kernel(allocates=False)
def independent_online_id(mcc_slot, k):
    return (INDEPENDENT_ONLINE << KIND_SHIFT) | (mcc_slot << 20) | k


@kernel(allocates=False)
def segment_pick(st, cum, a, b):
    """Index in [a, b) drawn with the CSR segment's cumulative weights cum[a:b] (each segment
    restarts at 0, see world_arrays._segment_cumsum); -1 if the segment's weights are all 0."""
    total = cum[b - 1]
    if total <= 0.0:
        return -1
    if b - a == 1:
        return a
    return rng.bisect_right(cum, a, b, rng.uniform(st) * total)


@kernel(allocates=False)
def pick_store(st, w, city, mcc_slot):
    """A card-present merchant of MCC slot `mcc_slot` in `city`: a chain store or a local shop."""
    pop = w.city_population[city]
    a, b = w.mcc_chain_offsets[mcc_slot], w.mcc_chain_offsets[mcc_slot + 1]
    if b > a and rng.uniform(st) < w.mcc_chain_share[mcc_slot]:
        j = segment_pick(st, w.mcc_chain_cum_store, a, b)
        if j >= 0:
            chain = w.mcc_chain[j]
            n = int(round(pop * w.chain_density[chain]))
            if n >= 1:
                return chain_store_id(chain, city, rng.integer(st, n))
    n = max(1, int(round(pop * w.mcc_local_density[mcc_slot])))
    return local_id(city, mcc_slot, rng.integer(st, n))


@kernel(allocates=False)
def pick_online(st, w, mcc_slot, independent_share):
    """An online merchant of MCC slot `mcc_slot`: a chain's web shop or an independent one."""
    a, b = w.mcc_chain_offsets[mcc_slot], w.mcc_chain_offsets[mcc_slot + 1]
    if b > a and rng.uniform(st) >= independent_share:
        j = segment_pick(st, w.mcc_chain_cum_online, a, b)
        if j >= 0:
            return chain_online_id(w.mcc_chain[j])
    return independent_online_id(mcc_slot, rng.integer(st, 40))


@kernel(allocates=False)
def pick_mcc(st, w, k):
    a, b = w.type_mcc_offsets[k], w.type_mcc_offsets[k + 1]
    return w.type_mcc_slot[segment_pick(st, w.type_mcc_cum, a, b)]


@kernel(allocates=False)
def _near_home(st, w, home):
    if home >= w.n_us_cities:
        return home
    a, b = w.nearby_offsets[home], w.nearby_offsets[home + 1]
    return w.nearby_city[segment_pick(st, w.nearby_cum, a, b)]


@kernel(allocates=False)
def year_index(w, year):
    return min(max(year - w.first_year, 0), w.online_multiplier.shape[0] - 1)


@kernel(allocates=False)
def _card_weight(w, kind, scale):
    return w.card_usage[kind] * math.exp(w.card_amount_preference[kind] * scale)


@kernel(allocates=False)
def covers(kind, limit, money, amount):
    """Whether a card has the money for `amount`: room under the limit for the balance owed
    on a credit card (kind 0), enough funds on a debit or prepaid one."""
    return money + amount <= limit if kind == 0 else amount <= money


@kernel(allocates=False)
def _pick_card(
    st, w, cards_kind, cards_open, cards_limit, funds, weights, a, b, day, amount, price
):
    """A card open on `day` for a purchase of `amount`, or -1 (no card open, or given up).

    Cards weigh by kind and by how the kind suits the amount; a card without the money
    weighs (1 - awareness) as much, and when no card has it the purchase is given up with
    chance `awareness` (consumers mostly know their balances). weights: (>= b - a,)
    float64 scratch.
    """
    awareness = w.scalars[S_AWARENESS]
    kinds = 0  # a bit per kind among the open cards
    any_covers = False
    for c in range(a, b):
        weights[c - a] = 0.0  # closed: never picked
        if cards_open[c] <= day:
            kinds |= 1 << cards_kind[c]
            fits = covers(cards_kind[c], cards_limit[c] * price, funds[c - a], amount)
            any_covers |= fits
            weights[c - a] = 1.0 if fits else 1.0 - awareness
    if kinds == 0:
        return -1
    if not any_covers and rng.uniform(st) < awareness:
        return -1
    if kinds & (kinds - 1) == 0:
        # One kind: its cards weigh the same whatever the amount, so skip the logs and exps.
        w0, w1, w2 = w.card_usage[0], w.card_usage[1], w.card_usage[2]
    else:
        # Only the kinds among the open cards: a closed card's weight is 0 whatever its kind's.
        scale = math.log(max(amount, 1.0) / 50.0)
        w0 = _card_weight(w, 0, scale) if kinds & 1 else 0.0
        w1 = _card_weight(w, 1, scale) if kinds & 2 else 0.0
        w2 = _card_weight(w, 2, scale) if kinds & 4 else 0.0
    total = 0.0
    for c in range(a, b):
        kind = cards_kind[c]
        total += (w0 if kind == 0 else (w1 if kind == 1 else w2)) * weights[c - a]
        weights[c - a] = total  # now the cumulative weight up to card c
    if total <= 0.0:
        return -1
    target = rng.uniform(st) * total
    last = -1
    for c in range(a, b):
        if cards_open[c] <= day:
            last = c
            if target < weights[c - a]:
                return c
    return last


@kernel(allocates=False)
def attempt_error(st, w, kind, channel, scale):
    """The error string index of an attempt (0 = none); fraud attempts fail `scale` times as often.
    channel: SWIPE, CHIP, ONLINE, or ON_FILE (an online charge to a card on file, which
    sends no PIN, CVV or ZIP code)."""
    s = w.scalars
    balance = s[S_ERR_BALANCE] * (0.6 if kind == 0 else (1.3 if kind == 1 else 2.0))
    u = rng.uniform(st) / scale
    p = balance
    if u < p:
        return 1
    if channel == SWIPE or channel == CHIP:
        p += s[S_ERR_PIN]
        if u < p:
            return 2
    p += s[S_ERR_GLITCH]
    if u < p:
        return 3
    if channel == ONLINE:
        p += s[S_ERR_CVV]
        if u < p:
            return 4
    if channel == ONLINE or channel == ON_FILE:
        p += s[S_ERR_EXPIRATION]
        if u < p:
            return 5
    if channel == ONLINE:
        p += s[S_ERR_ZIP]
        if u < p:
            return 7
    p += s[S_ERR_CARD_NUMBER]
    if u < p:
        return 6
    return 0


@kernel
def grow(buf, n, need):
    """`buf` (N_COLUMNS, capacity) with room for `need` more rows after the first n."""
    if n + need <= buf.shape[1]:
        return buf
    bigger = np.empty((N_COLUMNS, max(2 * buf.shape[1], n + need)), np.int64)
    for col in range(N_COLUMNS):
        for r in range(n):
            bigger[col, r] = buf[col, r]
    return bigger


@kernel
def doubled(matrix, n):
    """A copy of `matrix` (rows, cols) with twice the rows, of which the first n are set.

    NOTE: explicit loops here and in `grow`, not slice assignments: each of those compiles
    numba's shape-checking code, seconds of a first run's compile time.
    """
    bigger = np.empty((2 * matrix.shape[0], matrix.shape[1]), matrix.dtype)
    for r in range(n):
        for col in range(matrix.shape[1]):
            bigger[r, col] = matrix[r, col]
    return bigger


@kernel
def stable_order(keys):
    """The permutation that sorts `keys` ((n,) int64) stably, as np.argsort(kind="stable").

    NOTE: a bottom-up merge sort written out: numba's own mergesort argsort added 4 s to a
    first run's compile time.
    """
    n = keys.shape[0]
    order = np.arange(n)
    merged = np.empty(n, np.int64)
    width = 1
    while width < n:
        for lo in range(0, n, 2 * width):
            mid, hi = min(lo + width, n), min(lo + 2 * width, n)
            i, j = lo, mid
            for k in range(lo, hi):
                # Ties take the left run first: the sort is stable.
                if i < mid and (j >= hi or keys[order[i]] <= keys[order[j]]):
                    merged[k] = order[i]
                    i += 1
                else:
                    merged[k] = order[j]
                    j += 1
        order, merged = merged, order
        width *= 2
    return order


@kernel
def sort_rows(buf, start, stop):
    """Sort rows [start, stop) by time (stable) and number them from 0: one consumer's history.

    NOTE: rows arrive nearly sorted (day by day; only a day's own hours, refunds and fraud
    are out of place), so an insertion sort of the times beats a merge sort several times
    over; it hands over to the merge sort if the rows turn out far from sorted.
    """
    m = stop - start
    keys = buf[C_TIME, start:stop].copy()
    order = np.arange(m)
    moves, budget = 0, 16 * m + 1024
    for i in range(1, m):
        key, index = keys[i], order[i]
        j = i - 1
        while j >= 0 and keys[j] > key:
            keys[j + 1], order[j + 1] = keys[j], order[j]
            j -= 1
        keys[j + 1], order[j + 1] = key, index
        moves += i - 1 - j
        if moves > budget:
            order = stable_order(buf[C_TIME, start:stop])
            break
    if moves > 0:
        values = np.empty(m, np.int64)
        for col in range(N_COLUMNS):
            for i in range(m):
                values[i] = buf[col, start + i]
            for i in range(m):
                buf[col, start + i] = values[order[i]]
    for r in range(start, stop):
        buf[C_SEQ, r] = r - start


@kernel(allocates=False)
def segment_on(seg_start, seg_end, a, b, day):
    """The segment among [a, b) that holds `day`, or -1."""
    for s in range(a, b):
        if seg_start[s] <= day < seg_end[s]:
            return s
    return -1


@kernel(allocates=False)
def state_on(seg_start, seg_end, seg_state, a, b, day):
    s = segment_on(seg_start, seg_end, a, b, day)
    return seg_state[s] if s >= 0 else 0


@kernel
def simulate_purchases(
    w,
    consumer_ids,
    income,
    first_day,
    retirement_day,
    card_offsets,
    card_id,
    card_kind,
    card_open,
    card_chip_from,
    card_limit,
    seg_offsets,
    seg_start,
    seg_end,
    seg_state,
    seg_city,
    seg_home,
    seg_epoch,
    buf,
    first,
    n,
):
    """The transactions of a shard's consumers from index `first` on, written into buf
    (N_COLUMNS, capacity) int64 from column n: one row per column (C_*), transactions
    sorted by consumer then time; times are local seconds since 1970-01-01, amounts in
    cents. Returns (consumers done, columns used): it stops before the first consumer
    that does not fit, and the caller grows buf and calls again from there.

    w: WorldArrays (a NamedTuple of arrays). consumer_ids, first_day, retirement_day: (n,)
    int64; income: (n,) float64. Cards CSR: card_offsets (n+1,) and per card (m,) card_id
    int64, card_kind int8, card_open int64 (day), card_chip_from int64 (day).
    Segments CSR: seg_offsets (n+1,), per segment (s,) start/end (day, end exclusive),
    state int8, city / home int64, epoch int64.

    NOTE: the caller allocates buf (NumPy backs large arrays with huge pages; numba's
    allocator does not), sized for the expected rows. Growing it here by doubling, with
    its page faults, cost a quarter of the kernel's time.
    """
    n_types = w.rate.shape[0]
    n_combos = N_COMBOS * w.shock_factor.shape[0]
    max_cards = 1
    for i in range(card_offsets.shape[0] - 1):
        max_cards = max(max_cards, card_offsets[i + 1] - card_offsets[i])
    work = (
        np.empty((n_combos, n_types)),  # cumulative type weights of each kind of day
        np.empty(n_combos),  # their totals
        np.zeros(n_combos, np.bool_),  # which kinds of day are filled in
        np.empty(n_types),  # personal rates
        np.empty(n_types),  # personal typical tickets
        np.cumsum(w.participation * w.rate),  # random fraud's type weights
        np.zeros(max_cards),  # money on each card
        np.zeros(max_cards),  # share of a statement paid
        np.zeros(max_cards),  # _pick_card's weights
        np.zeros((5, 2), np.uint64),  # the consumer's random streams
        np.zeros(n_types, np.int64),  # day of the month each monthly bill is due, or 0
        np.zeros(n_types),  # when each bill goes on the card: see _consumer_rows
    )
    cards = (card_offsets, card_id, card_kind, card_open, card_chip_from, card_limit)
    segments = (seg_offsets, seg_start, seg_end, seg_state, seg_city, seg_home, seg_epoch)
    for i in range(first, consumer_ids.shape[0]):
        person = (consumer_ids[i], income[i], first_day[i], retirement_day[i])
        stop = _consumer_rows(w, i, person, cards, segments, work, buf, n)
        if stop < 0:  # out of room: the caller grows buf and simulates i again (same draws)
            return i, n
        # This consumer's rows in time order; a stable sort keeps emission order on ties.
        sort_rows(buf, n, stop)
        n = stop
    return consumer_ids.shape[0], n


@kernel(allocates=False)
def _consumer_rows(w, i, person, cards, segments, work, buf, n):
    """Write consumer i's transactions into buf from column n; returns the column after
    the last, or -1 when buf has no room left (the caller grows it and calls again)."""
    cid, income, first_day, retirement_day = person
    card_offsets, card_id, card_kind, card_open, card_chip_from, card_limit = cards
    seg_offsets, seg_start, seg_end, seg_state, seg_city, seg_home, seg_epoch = segments
    combo_cum, combo_total, combo_ready, p_rate, p_amount = work[:5]
    fraud_cum, funds, pays, card_weights, streams, bill_day, adoption = work[5:]
    pst, bst, st, fst, fav = streams[0], streams[1], streams[2], streams[3], streams[4]
    n_types = p_rate.shape[0]
    n_shocks = w.shock_factor.shape[0]
    s = w.scalars
    n_fav = int(s[S_FAV_COUNT])
    capacity = buf.shape[1]
    ca, cb = card_offsets[i], card_offsets[i + 1]
    sa, sb = seg_offsets[i], seg_offsets[i + 1]
    ratio = income / s[S_INCOME_MEDIAN]

    # The personal profile: drawn once from the population's distributions (Altman).
    rng.reseed(pst, w.seed, cid, rng.PROFILE)
    for k in range(n_types):
        if rng.uniform(pst) < w.participation[k]:
            shape = w.rate_shape[k]
            p_rate[k] = w.rate[k] * ratio ** w.income_elasticity[k] * rng.gamma(pst, shape) / shape
        else:
            p_rate[k] = 0.0
            rng.gamma(pst, 1.0)  # keep the stream aligned across participation outcomes
        p_amount[k] = (
            w.amount_median[k]
            * ratio ** w.amount_income_elasticity[k]
            * math.exp(s[S_PERSONAL_SIGMA] * rng.normal(pst))
        )
    combo_ready[:] = False

    # Monthly bills (recurring types): one the consumer has is due on its own day of the
    # month, and goes on a card from the year card use (WorldArrays.bill_card_use) exceeds
    # its adoption draw. Their rates leave the day's random purchases.
    rng.reseed(bst, w.seed, cid, rng.BILLS)
    bill_days = 0  # bit d set when a bill is due on day d of the month
    for k in range(n_types):
        bill_day[k] = 0
        if w.recurring[k]:
            day_of_month = 1 + rng.integer(bst, 28)
            adoption[k] = rng.uniform(bst)
            if p_rate[k] > 0.0:
                bill_day[k] = day_of_month
                bill_days |= 1 << day_of_month
            p_rate[k] = 0.0

    # Money on each card: the balance owed on a credit card, the funds on a debit or
    # prepaid card. A purchase that does not fit declines with Insufficient Balance.
    rng.reseed(bst, w.seed, cid, rng.BALANCES)
    for j in range(cb - ca):
        c = ca + j
        if card_kind[c] == 0:
            funds[j] = 0.2 * rng.uniform(bst) * card_limit[c]
            pays[j] = 1.0 if rng.uniform(bst) < s[S_FULL_PAYMENT] else 0.25 + 0.5 * rng.uniform(bst)
        else:
            funds[j] = card_limit[c] * rng.uniform(bst)
    settle_days = _settle_days(card_kind, card_id, ca, cb)

    rng.reseed(st, w.seed, cid, rng.PURCHASES)
    seg = sa
    day0 = max(first_day, w.start_day)
    for day in range(day0, w.end_day + 1):
        while seg < sb - 1 and seg_end[seg] <= day:
            seg += 1
        if seg >= sb or not (seg_start[seg] <= day < seg_end[seg]):
            continue
        state = seg_state[seg]
        retired = 1 if day >= retirement_day else 0
        d = day - w.start_day
        wd, month, dom, y = w.calendar[d, 0], w.calendar[d, 1], w.calendar[d, 2], w.calendar[d, 3]
        if (settle_days >> dom) & 1:
            _settle(funds, pays, card_kind, card_limit, card_id, ca, cb, dom, w.price_level[y])
        day_kind, shock = w.day_kind[d], w.shock_day[d]
        combo = (((retired * N_STATES + state) * N_MONTHS + month) * N_WEEKDAYS + wd) * N_DAY_KINDS
        combo = (combo + day_kind) * n_shocks + shock
        if not combo_ready[combo]:
            acc = 0.0
            for k in range(n_types):
                f = (
                    p_rate[k]
                    * w.weekday_factor[k, wd]
                    * w.season_factor[k, month]
                    * w.state_factor[k, state]
                )
                if day_kind == HOLIDAY:
                    f *= w.holiday_factor[k]
                elif day_kind == CLOSED:
                    f *= w.closed_factor[k]
                if retired:
                    f *= w.retired_factor[k]
                f *= w.shock_factor[shock, k]
                acc += f
                combo_cum[combo, k] = acc
            combo_total[combo] = acc
            combo_ready[combo] = True
        lam = combo_total[combo] * w.spend_multiplier[y] / 365.2425
        count = rng.poisson(st, lam)
        due = (bill_days >> dom) & 1
        if count == 0 and due == 0:
            continue
        if n + 3 * count + n_types > capacity:  # purchases, retries, refunds and bills
            return -1
        if due:
            bills = (bill_day, adoption, p_amount)
            n = _pay_bills(w, cid, day, dom, y, state, seg_epoch[seg], bills, cards, i, funds,
                           card_weights, streams, buf, n)  # fmt: skip
        for _ in range(count):
            # NOTE: a bisection of the kind of day's cumulative weights. A guide table per
            # kind of day (rng.guided_pick), built once per kind of day and consumer, cost
            # about what it saved: medians of 330 ns a row with it, 323 without (10 runs of
            # each, alternating), and it was a table of 64 entries per kind of day.
            target = rng.uniform(st) * combo_total[combo]
            k = rng.bisect_right(combo_cum[combo], 0, n_types, target)
            hour = rng.guided_pick(w.hour_cum[k], 0, 24, w.hour_guide[k], rng.uniform(st))
            seconds = hour * 3600 + rng.integer(st, 3600)
            mcc = pick_mcc(st, w, k)
            online = (not w.mcc_card_present[mcc]) or rng.uniform(st) < min(
                1.0, w.online_share[k] * w.online_multiplier[y]
            )
            if online:
                merchant = pick_online(st, w, mcc, s[S_INDEP_ONLINE])
                city = -1
            elif state == 0 and n_fav > 0 and rng.uniform(st) < s[S_FAV_SHARE]:
                # A favourite: redrawn from its own stream, so it is the same shop every time.
                rng.reseed(
                    fav,
                    w.seed,
                    cid,
                    rng.FAVOURITES,
                    (seg_epoch[seg] * 4096 + k) * 16 + rng.integer(st, n_fav),
                )
                mcc = pick_mcc(fav, w, k)
                if not w.mcc_card_present[mcc]:
                    mcc = pick_mcc(st, w, k)
                city = _near_home(fav, w, seg_home[seg])
                merchant = pick_store(fav, w, city, mcc)
            else:
                city = _near_home(st, w, seg_home[seg]) if state == 0 else seg_city[seg]
                merchant = pick_store(st, w, city, mcc)
            price = w.price_level[y]
            amount, cents = _ticket(st, w, k, p_amount[k], price)
            c = _pick_card(st, w, card_kind, card_open, card_limit, funds, card_weights, ca, cb,
                           day, amount, price)  # fmt: skip
            if c < 0:
                continue
            if online:
                channel = ONLINE
            elif card_chip_from[c] <= day and rng.uniform(st) < w.chip_terminal_share[y]:
                channel = CHIP
            else:
                channel = SWIPE
            error = _charge(st, w, card_kind, card_limit, funds, c, c - ca, channel, amount, price)
            emit(buf, n, day * 86400 + seconds, cid, card_id[c], merchant, mcc, k, cents,
                 channel, error, 0, state, city)  # fmt: skip
            n += 1
            if error != 0 and rng.uniform(st) < s[S_RETRY]:
                # Tried again minutes later: after Insufficient Balance with a card drawn
                # again (those with the money weigh more), else the same card.
                if error == 1:
                    c = _pick_card(st, w, card_kind, card_open, card_limit, funds, card_weights,
                                   ca, cb, day, amount, price)  # fmt: skip
                delay = 30 + int(rng.exponential(st, s[S_RETRY_DELAY]))
                if c >= 0 and seconds + delay < 86400:  # not after midnight: the day has settled
                    seconds += delay
                    if channel == CHIP and card_chip_from[c] > day:
                        channel = SWIPE  # the card drawn again has no chip
                    error = _charge(st, w, card_kind, card_limit, funds, c, c - ca, channel,
                                    amount, price)  # fmt: skip
                    emit(buf, n, day * 86400 + seconds, cid, card_id[c], merchant, mcc, k, cents,
                         channel, error, 0, state, city)  # fmt: skip
                    n += 1
            refund_p = w.refund_rate[k] * (s[S_REFUND_ONLINE] if online else 1.0)
            if error == 0 and rng.uniform(st) < refund_p:
                rday = day + 1 + rng.integer(st, int(s[S_REFUND_DELAY]))
                if rday <= w.end_day:
                    back = (
                        cents
                        if rng.uniform(st) < 0.7
                        else max(1, int(cents * (0.2 + 0.8 * rng.uniform(st))))
                    )
                    rseg = segment_on(seg_start, seg_end, sa, sb, rday)
                    rstate = seg_state[rseg] if rseg >= 0 else 0
                    rsec = 9 * 3600 + rng.integer(st, 11 * 3600)
                    # A shop takes a return at its counter: only from a purchase made at
                    # home, with the consumer home again and not moved away since.
                    there = rseg >= 0 and state == 0 == rstate and seg_epoch[rseg] == seg_epoch[seg]
                    if online or there:
                        emit(buf, n, rday * 86400 + rsec, cid, card_id[c], merchant, mcc, k,
                             -back, channel, 0, 0, rstate, city)  # fmt: skip
                        n += 1

    # Random fraud (Altman's second mechanism): bursts at random times on a random card.
    rng.reseed(fst, w.seed, cid, rng.RANDOM_FRAUD)
    active_days = w.end_day + 1 - day0
    if active_days > 0 and cb > ca:
        episodes = rng.poisson(fst, s[S_FRAUD_RATE] * active_days / 365.2425)
        for _ in range(episodes):
            day = day0 + rng.integer(fst, active_days)
            open_cards = 0
            for cc in range(ca, cb):
                if card_open[cc] <= day:
                    open_cards += 1
            pick = rng.integer(fst, max(1, open_cards))
            c = -1
            for cc in range(ca, cb):
                if card_open[cc] <= day:
                    if pick == 0:
                        c = cc
                        break
                    pick -= 1
            if c < 0:
                continue
            burst = 1 + rng.poisson(fst, s[S_FRAUD_BURST] - 1.0)
            t = day * 86400 + rng.integer(fst, 86400)
            y = w.calendar[day - w.start_day, 3]  # day0 <= day <= end_day
            state = state_on(seg_start, seg_end, seg_state, sa, sb, day)
            if n + burst > capacity:
                return -1
            for _ in range(burst):
                if card_open[c] > t // 86400 or t // 86400 > w.end_day:
                    break
                k = rng.choose(fst, fraud_cum)
                mcc = pick_mcc(fst, w, k)
                online = (not w.mcc_card_present[mcc]) or rng.uniform(fst) < s[S_FRAUD_ONLINE]
                if online:
                    merchant, city, channel = pick_online(fst, w, mcc, 0.5), -1, ONLINE
                else:
                    city = rng.choose(fst, w.home_city_cum)
                    merchant, channel = pick_store(fst, w, city, mcc), SWIPE
                amount = (
                    s[S_FRAUD_MEDIAN]
                    * math.exp(s[S_FRAUD_SIGMA] * rng.normal(fst))
                    * w.price_level[y]
                )
                cents = max(1, int(round(amount * 100.0)))
                error = attempt_error(fst, w, card_kind[c], channel, 1.0)
                emit(buf, n, t, cid, card_id[c], merchant, mcc, k, cents, channel, error,
                     FRAUD_RANDOM, state, city)  # fmt: skip
                n += 1
                t += 60 + int(rng.exponential(fst, 1800.0))
    return n


@kernel(allocates=False)
def _pay_bills(w, cid, day, dom, y, state, epoch, bills, cards, i, funds, weights, streams, buf, n):
    """The monthly bills due on `day` (day of the month `dom`, year index `y`): each from the
    consumer's own provider for its type since the last move (a web shop or a chain's),
    the same amount all year around the consumer's typical ticket, on the card chosen for
    it; returns the column after the last.
    """
    bill_day, adoption, p_amount = bills
    card_offsets, card_id, card_kind, card_open, card_chip_from, card_limit = cards
    amounts, st, provider = streams[0], streams[2], streams[4]
    ca, cb = card_offsets[i], card_offsets[i + 1]
    price = w.price_level[y]
    for k in range(bill_day.shape[0]):
        if bill_day[k] != dom or adoption[k] >= w.bill_card_use[y]:
            continue
        rng.reseed(amounts, w.seed, cid, rng.BILLS, 1 + y * 4096 + k)
        amount, cents = _ticket(amounts, w, k, p_amount[k], price)
        rng.reseed(provider, w.seed, cid, rng.BILLS, (1 + epoch) * 2**40 + k)
        mcc = pick_mcc(provider, w, k)
        merchant = pick_online(provider, w, mcc, w.scalars[S_INDEP_ONLINE])
        c = _pick_card(provider, w, card_kind, card_open, card_limit, funds, weights, ca, cb,
                       day, amount, price)  # fmt: skip
        if c < 0:
            continue
        hour = rng.guided_pick(w.hour_cum[k], 0, 24, w.hour_guide[k], rng.uniform(st))
        seconds = hour * 3600 + rng.integer(st, 3600)
        error = _charge(st, w, card_kind, card_limit, funds, c, c - ca, ON_FILE, amount, price)
        emit(buf, n, day * 86400 + seconds, cid, card_id[c], merchant, mcc, k, cents, ONLINE,
             error, 0, state, -1)  # fmt: skip
        n += 1
    return n


@kernel(allocates=False)
def _charge(st, w, card_kind, card_limit, funds, c, j, channel, amount, price):
    """The error string index of a purchase of `amount` on card c (the consumer's j-th):
    Insufficient Balance when the card's money does not cover it, else an attempt's error;
    an approved purchase moves the card's money."""
    if not covers(card_kind[c], card_limit[c] * price, funds[j], amount):
        return 1  # Insufficient Balance
    error = attempt_error(st, w, card_kind[c], channel, 1.0)
    if error == 0:
        funds[j] += amount if card_kind[c] == 0 else -amount
    return error


@kernel(allocates=False)
def _ticket(st, w, k, typical, price):
    """(amount, cents) of a type-k ticket around the consumer's `typical` one at the year's
    `price` level: lognormal, and with type k's round_share a round sum (the nearest whole
    multiple of its round unit, at least one)."""
    amount = typical * math.exp(w.amount_sigma[k] * rng.normal(st)) * price
    cents = max(1, int(round(amount * 100.0)))
    if w.round_share[k] > 0.0 and rng.uniform(st) < w.round_share[k]:
        unit = w.round_cents[k]
        cents = max(unit, (cents + unit // 2) // unit * unit)
        amount = cents / 100.0
    return amount, cents


@kernel(allocates=False)
def _settle(funds, pays, card_kind, card_limit, card_id, ca, cb, dom, price):
    """The day's money movements: statements paid on credit cards, pay on debit, reloads."""
    for c in range(ca, cb):
        j = c - ca
        limit = card_limit[c] * price
        if card_kind[c] == 0:
            if dom == 1 + card_id[c] % 28:
                funds[j] *= 1.0 - pays[j]
        elif card_kind[c] == 1:
            if dom == 1 or dom == 15:  # pay day: half the monthly deposit, up to a buffer
                funds[j] = min(funds[j] + 0.5 * limit, 1.5 * limit)
        elif funds[j] < 0.5 * limit:
            funds[j] = limit  # a prepaid card is topped up once half spent


@kernel(allocates=False)
def _settle_days(card_kind, card_id, ca, cb):
    """The days of the month on which `_settle` moves money on cards [ca, cb): bit d for
    day d (every day with a prepaid card, which is topped up whenever it runs low).

    NOTE: most days move no money; skipping `_settle` on them spares its loop over the
    cards on every active day (3.1% of a block's profile samples before, 1.4-1.8% after).
    """
    days = 0
    for c in range(ca, cb):
        if card_kind[c] == 0:
            days |= 1 << (1 + card_id[c] % 28)
        elif card_kind[c] == 1:
            days |= (1 << 1) | (1 << 15)
        else:
            days = -1
    return days


@kernel(allocates=False)
def emit(buf, n, t, cid, card, merchant, mcc, k, cents, channel, error, fraud, state, city):
    """Write one row; fraudster, compromise and method columns start empty."""
    buf[C_TIME, n] = t
    buf[C_CONSUMER, n] = cid
    buf[C_CARD, n] = card
    buf[C_MERCHANT, n] = merchant
    buf[C_MCC_SLOT, n] = mcc
    buf[C_TYPE, n] = k
    buf[C_CENTS, n] = cents
    buf[C_CHANNEL, n] = channel
    buf[C_ERROR, n] = error
    buf[C_FRAUD, n] = fraud
    buf[C_STATE, n] = state
    buf[C_CITY, n] = city
    buf[C_FRAUDSTER, n] = -1
    buf[C_COMPROMISE, n] = -1
    buf[C_METHOD, n] = 1 if fraud == FRAUD_RANDOM else 0
