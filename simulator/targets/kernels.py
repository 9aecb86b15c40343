"""Numba kernels for per-transaction targets: flat CSR arrays in, one (rows, targets) array out.

Users lie side by side in flat arrays cut by `offsets` (CSR). For each user, work shared by
targets is done once: calendar bucket ids per unit, window bounds per distinct window
(`bounds`: where each row's window starts, or stops for future windows), a 0/1 match mask per
distinct filter, and prefix sums/counts of matching amounts. Then each target is one short
loop: sums, counts, means and labels are differences of prefixes (branch-free, and an empty
window is exactly 0); min/max sweep with a running extreme (calendar windows) or read a
sparse table (rolling windows); top-k mean sweeps with a k-slot insertion buffer. Future
windows are the same sweeps run backwards.
Nothing is re-sorted.

The target encoding (`params`, `windows` and `filters` columns and codes) is defined here and
filled by `plan.py`.
"""

from __future__ import annotations

import numpy as np

from cardworld.simulator.kernels.jit import kernel

US_PER_DAY = 86_400_000_000

UNIT_DAY = 0
UNIT_WEEK = 1
UNIT_MONTH = 2
UNIT_ROLLING = 3

AGG_SUM = 0
AGG_COUNT = 1
AGG_MEAN = 2
AGG_MIN = 3
AGG_MAX = 4
AGG_TOPK = 5
AGG_ANY = 6

FILTER_NONE = 0
FILTER_MCC = 1
FILTER_CATEGORY = 2

# Columns of the (n_targets, N_PARAMS) int64 `params` array.
P_WINDOW = 0  # row of `windows`
P_FILTER = 1  # row of `filters`
P_INCLUDE = 2
P_AGG = 3
P_K = 4
N_PARAMS = 5

# Columns of the (n_windows, 4) int64 `windows` array: one row per distinct window.
W_UNIT = 0
W_FUTURE = 1
W_LENGTH_US = 2  # rolling windows only
W_PAST_TWIN = 3  # for a future rolling window: row of the past window of the same length, or -1

# Columns of the (n_filters, 3) int64 `filters` array: one row per distinct filter.
F_KIND = 0
F_TABLE = 1  # row of mcc_tables or cat_tables
F_PREFIX = 2  # 1 when an additive target needs the filter's prefix sums

# MCC codes are looked up in tables of this width; slot MCC_NONE holds null or out-of-range MCCs.
MCC_NONE = 10_000
MCC_TABLE_WIDTH = MCC_NONE + 1


@kernel
def _month_index(day):
    """year * 12 + month - 1 of a day count since 1970-01-01 (Hinnant's civil_from_days).

    day: int64 scalar.
    """
    z = day + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    month = mp + 3 if mp < 10 else mp - 9
    year = yoe + era * 400 + (1 if month <= 2 else 0)
    return year * 12 + month - 1


@kernel
def _fill_days(ts, out):
    """Day number (since 1970-01-01) of every row. ts: (n,) int64 microseconds, local naive
    time. out: (>= n,) int64, written in [0, n)."""
    for i in range(ts.shape[0]):
        out[i] = ts[i] // US_PER_DAY


@kernel
def _fill_buckets(days, unit, out):
    """Calendar bucket id of every row from its day number.

    days: (n,) int64 as `_fill_days` writes them. unit: UNIT_WEEK (ISO weeks, Monday first)
    or UNIT_MONTH. out: (>= n,) int64, written in [0, n).
    """
    last_day = np.int64(-(2**62))
    last_month = np.int64(0)
    for i in range(days.shape[0]):
        day = days[i]
        if unit == UNIT_WEEK:
            # 1970-01-01 was a Thursday: shifting by 3 days puts Mondays on multiples of 7.
            out[i] = (day + 3) // 7
        else:
            if day != last_day:
                last_day = day
                last_month = _month_index(day)
            out[i] = last_month


@kernel
def _fill_bounds(ts, buckets, rolling, future, length, out):
    """Where each row's window starts (past) or stops (future), current row included.

    ts: (n,) int64 microseconds, sorted. buckets: (>= n,) int64 calendar ids (ignored when
    rolling). length: rolling length in microseconds. out: (>= n,) int32. A past window is rows
    [out[i], i]: the row's bucket so far, or rows later than ts[i] - length. A future window is
    rows [i, out[i]): the rest of the bucket, or rows earlier than ts[i] + length.
    """
    n = ts.shape[0]
    if rolling:
        # NOTE: a branch-free merge of the rows with the window edges: a `while` two-pointer
        # loop mispredicts about once per row on real (irregular) gaps and runs slower.
        i = 0
        j = 0
        if future:
            while i < n:
                inside = j < n and ts[j] < ts[i] + length
                out[i] = j
                step = 1 if inside else 0
                j += step
                i += 1 - step
        else:
            while i < n:
                gone = ts[j] + length <= ts[i]
                out[i] = j
                step = 1 if gone else 0
                j += step
                i += 1 - step
    elif future:
        out[n - 1] = n
        for i in range(n - 2, -1, -1):
            out[i] = out[i + 1] if buckets[i] == buckets[i + 1] else i + 1
    else:
        out[0] = 0
        for i in range(1, n):
            out[i] = out[i - 1] if buckets[i] == buckets[i - 1] else i


@kernel
def _invert_bounds(past, n, out):
    """Future bounds of a rolling window from the past bounds of the same length, branch-free.

    past: (>= n,) int32 past bounds. out: (>= n,) int32. Row j lies in the future window of
    row i exactly when i lies in the past window of row j, so out[i] = #{j : past[j] <= i}.
    """
    for i in range(n):
        out[i] = 0
    for j in range(n):
        out[past[j]] = j + 1  # past is non-decreasing: the last j per value wins
    run = 0
    for i in range(n):
        run = max(run, out[i])
        out[i] = run


@kernel
def _fill_matches(amount, mcc, category, filters, mcc_tables, cat_tables, masks, prefix, counts):
    """Per filter, the 0/1 match mask of every row and, where an additive target needs them,
    prefix sums and counts of the matching rows.

    amount: (n,) float64. mcc, category: (n,) int32 codes. filters, mcc_tables, cat_tables as
    in `_user_targets`. masks: (n_filters, >= n) uint8. prefix: (n_filters, >= n + 1) float64
    and counts: (n_filters, >= n + 1) int32, where entry i covers rows [0, i).
    """
    n = amount.shape[0]
    n_filters = filters.shape[0]
    for f in range(n_filters):
        kind = filters[f, F_KIND]
        if kind == FILTER_NONE:
            for i in range(n):
                masks[f, i] = 1
        elif kind == FILTER_CATEGORY:
            table = cat_tables[filters[f, F_TABLE]]
            for i in range(n):
                masks[f, i] = table[category[i]]
        else:
            table = mcc_tables[filters[f, F_TABLE]]
            for i in range(n):
                masks[f, i] = table[mcc[i]]
        prefix[f, 0] = 0.0
        counts[f, 0] = 0
    # NOTE: every filter's running sum in one sweep: each is a chain of dependent additions,
    # and side by side they overlap instead of waiting on each other (1 filter a sweep ran
    # at the latency of a float addition a row). Adding 0.0 for a row that does not match
    # keeps the loop branch-free and the sums exact (amounts are finite).
    for i in range(n):
        value = amount[i]
        for f in range(n_filters):
            if filters[f, F_PREFIX] != 0:
                match = masks[f, i]
                counts[f, i + 1] = counts[f, i] + match
                prefix[f, i + 1] = prefix[f, i] + (value if match else 0.0)


@kernel
def _window(bounds, i, future, include):
    """Row i's window as rows [lo, hi), from `_fill_bounds`: [bounds[i], i] for a past
    window, [i, bounds[i]) for a future one, without row i itself unless `include`."""
    keep = 1 if include else 0
    if future:
        return i + 1 - keep, bounds[i]
    return bounds[i], i + keep


@kernel
def _additive(prefix, counts, bounds, future, include, agg, fill, out, col):
    """Sum, count, mean or any of each row's window from prefix differences.

    prefix: (n + 1,) float64, counts: (n + 1,) int32 as filled by `_fill_matches`.
    bounds: (>= n,) int32 as filled by `_fill_bounds`. out: (n, n_targets), column `col`.
    """
    n = out.shape[0]
    # NOTE: one loop per aggregate keeps the loop body free of the aggregate switch.
    if agg == AGG_SUM:
        for i in range(n):
            lo, hi = _window(bounds, i, future, include)
            out[i, col] = prefix[hi] - prefix[lo]
    elif agg == AGG_COUNT:
        for i in range(n):
            lo, hi = _window(bounds, i, future, include)
            out[i, col] = counts[hi] - counts[lo]
    elif agg == AGG_ANY:
        for i in range(n):
            lo, hi = _window(bounds, i, future, include)
            out[i, col] = 1.0 if counts[hi] > counts[lo] else 0.0
    else:
        for i in range(n):
            lo, hi = _window(bounds, i, future, include)
            count = counts[hi] - counts[lo]
            out[i, col] = (prefix[hi] - prefix[lo]) / count if count > 0 else fill


@kernel
def _extreme_calendar(amount, mask, bounds, future, include, sign, fill, out, col):
    """Max (sign 1.0) or min (sign -1.0) over each row's calendar window: a running extreme.

    amount: (n,) float64. mask: (>= n,) uint8. bounds: (>= n,) int32 calendar bounds.
    out: (n, n_targets), column `col`.
    """
    n = amount.shape[0]
    best = -np.inf
    for r in range(n):
        i = n - 1 - r if future else r
        first = bounds[i] == i + 1 if future else bounds[i] == i
        if first:
            best = -np.inf
        value = sign * amount[i] if mask[i] else -np.inf
        if include:
            best = max(best, value)
        out[i, col] = sign * best if best > -np.inf else fill
        if not include:
            best = max(best, value)


@kernel
def _extreme_rolling(amount, mask, bounds, future, include, sign, fill, out, col, sparse, log2):
    """Max (sign 1.0) or min (sign -1.0) over each row's rolling window: a sparse table.

    amount: (n,) float64. mask: (>= n,) uint8. bounds: (>= n,) int32 rolling bounds.
    out: (n, n_targets), column `col`. sparse: (levels, >= n) float64 scratch, where row k
    holds the extreme of the 2**k signed amounts from each row on (levels covers the widest
    window). log2: (>= n + 1,) int64, floor(log2(m)) at m >= 1.

    NOTE: any window is the union of two overlapping power-of-two runs, so each row's answer
    is one compare, branch-free; a monotonic queue needs data-dependent loops and ran 3-4
    times slower on 30-day windows.
    """
    n = amount.shape[0]
    widest = 0
    for i in range(n):
        sparse[0, i] = sign * amount[i] if mask[i] else -np.inf
        lo, hi = _window(bounds, i, future, include)
        widest = max(widest, hi - lo)
    level = 0
    while (2 << level) <= widest:
        half = 1 << level
        for j in range(n - 2 * half + 1):
            a = sparse[level, j]
            b = sparse[level, j + half]
            sparse[level + 1, j] = a if a > b else b
        level += 1
    for i in range(n):
        lo, hi = _window(bounds, i, future, include)
        best = -np.inf
        if hi > lo:
            k = log2[hi - lo]
            a = sparse[k, lo]
            b = sparse[k, hi - (1 << k)]
            best = a if a > b else b
        out[i, col] = sign * best if best > -np.inf else fill


@kernel
def _topk_insert(buf, count, k, value):
    """Insert `value` into buf[:count] (sorted descending, at most k long); returns new count.

    buf: (>= k,) float64.
    """
    if count == k:
        if value <= buf[k - 1]:
            return count
        pos = k - 1
    else:
        pos = count
        count += 1
    while pos > 0 and buf[pos - 1] < value:
        buf[pos] = buf[pos - 1]
        pos -= 1
    buf[pos] = value
    return count


@kernel
def _topk_mean(buf, count, fill):
    """Mean of buf[:count], or fill when count is 0. buf: (>= count,) float64."""
    if count == 0:
        return fill
    total = 0.0
    for p in range(count):
        total += buf[p]
    return total / count


@kernel
def _topk(amount, mask, bounds, rolling, future, include, k, fill, out, col, buf):
    """Mean of the k largest matching amounts in each row's window.

    amount: (n,) float64. mask: (>= n,) uint8. bounds: (>= n,) int32. out: (n, n_targets),
    column `col`. buf: (>= k,) float64 scratch holding the window's top k, sorted descending.
    A rolling window is rescanned only when a row leaving it could be in the top k.
    """
    n = amount.shape[0]
    count = 0
    floor = -np.inf  # a value enters the top k only when above this
    value = fill
    edge = n if future else 0  # rows leave a rolling window at this edge
    for r in range(n):
        i = n - 1 - r if future else r
        if rolling:
            dirty = False
            if future:
                while edge > bounds[i]:
                    edge -= 1
                    leaving = amount[edge] if mask[edge] else -np.inf
                    dirty |= count > 0 and leaving >= buf[count - 1]
            else:
                while edge < bounds[i]:
                    leaving = amount[edge] if mask[edge] else -np.inf
                    dirty |= count > 0 and leaving >= buf[count - 1]
                    edge += 1
            if dirty:
                count = 0
                lo = i + 1 if future else edge
                hi = edge if future else i
                for j in range(lo, hi):
                    if mask[j]:
                        count = _topk_insert(buf, count, k, amount[j])
                value = _topk_mean(buf, count, fill)
                floor = buf[k - 1] if count == k else -np.inf
        elif bounds[i] == (i + 1 if future else i):
            count = 0
            value = fill
            floor = -np.inf
        # NOTE: non-matching rows become -inf, so the common case is one compare, no branch on mask.
        entering = amount[i] if mask[i] else -np.inf
        if include and entering > floor:
            count = _topk_insert(buf, count, k, entering)
            value = _topk_mean(buf, count, fill)
            floor = buf[k - 1] if count == k else -np.inf
        out[i, col] = value
        if not include and entering > floor:
            count = _topk_insert(buf, count, k, entering)
            value = _topk_mean(buf, count, fill)
            floor = buf[k - 1] if count == k else -np.inf


@kernel
def _user_targets(
    ts,
    amount,
    mcc,
    category,
    params,
    fills,
    windows,
    filters,
    mcc_tables,
    cat_tables,
    out,
    buckets,
    bounds,
    masks,
    prefix,
    counts,
    sparse,
    log2,
    buf,
):
    """All targets of one user.

    ts: (n,) int64 microseconds, sorted. amount: (n,) float64. mcc, category: (n,) int32 codes.
    params: (n_targets, N_PARAMS) int64. fills: (n_targets,) float64. windows: (n_windows, 4)
    int64. filters: (n_filters, 3) int64. mcc_tables: (>= 1, MCC_TABLE_WIDTH) uint8;
    cat_tables: (>= 1, n_categories + 1) uint8. out: (n, n_targets) float32 or float64,
    column-major (each target's column contiguous) for speed, though any layout works.
    Scratch, at least n (n + 1 for prefix, counts) long: buckets (3, .) int64, bounds
    (n_windows, .) int32, masks (n_filters, .) uint8, prefix (n_filters, .) float64, counts
    (n_filters, .) int32, sparse (levels, .) float64 and log2 (n + 1) int64 as
    `_extreme_rolling` takes them; buf (>= max k,) float64.
    """
    n = ts.shape[0]
    if n == 0:
        return
    # Day numbers always (week and month buckets derive from them), other units when used.
    _fill_days(ts, buckets[UNIT_DAY])
    for unit in (UNIT_WEEK, UNIT_MONTH):
        for w in range(windows.shape[0]):
            if windows[w, W_UNIT] == unit:
                _fill_buckets(buckets[UNIT_DAY][:n], unit, buckets[unit])
                break
    for w in range(windows.shape[0]):
        unit = windows[w, W_UNIT]
        rolling = unit == UNIT_ROLLING
        if windows[w, W_PAST_TWIN] < 0:
            _fill_bounds(
                ts,
                buckets[0] if rolling else buckets[unit],
                rolling,
                windows[w, W_FUTURE] != 0,
                windows[w, W_LENGTH_US],
                bounds[w],
            )
    for w in range(windows.shape[0]):
        if windows[w, W_PAST_TWIN] >= 0:
            _invert_bounds(bounds[windows[w, W_PAST_TWIN]], n, bounds[w])
    _fill_matches(amount, mcc, category, filters, mcc_tables, cat_tables, masks, prefix, counts)
    for t in range(params.shape[0]):
        w = params[t, P_WINDOW]
        f = params[t, P_FILTER]
        rolling = windows[w, W_UNIT] == UNIT_ROLLING
        future = windows[w, W_FUTURE] != 0
        include = params[t, P_INCLUDE] != 0
        agg = params[t, P_AGG]
        if agg == AGG_MIN or agg == AGG_MAX:
            sign = 1.0 if agg == AGG_MAX else -1.0
            if rolling:
                _extreme_rolling(
                    amount,
                    masks[f],
                    bounds[w],
                    future,
                    include,
                    sign,
                    fills[t],
                    out,
                    t,
                    sparse,
                    log2,
                )
            else:
                _extreme_calendar(
                    amount, masks[f], bounds[w], future, include, sign, fills[t], out, t
                )
        elif agg == AGG_TOPK:
            _topk(
                amount,
                masks[f],
                bounds[w],
                rolling,
                future,
                include,
                params[t, P_K],
                fills[t],
                out,
                t,
                buf,
            )
        else:
            _additive(prefix[f], counts[f], bounds[w], future, include, agg, fills[t], out, t)


@kernel
def _targets_range(
    offsets,
    first,
    stop,
    ts,
    amount,
    mcc,
    category,
    params,
    fills,
    windows,
    filters,
    mcc_tables,
    cat_tables,
    out,
    row0,
):
    """Targets of users [first, stop) in one thread, with scratch allocated once.

    offsets: (n_users + 1,) int64 CSR row offsets into ts, amount, mcc, category ((N,) each).
    out: (rows, n_targets) float32/float64, column-major; user rows [offsets[u], offsets[u+1]) go to out rows
    shifted by -row0. Other arrays as in `_user_targets`.
    """
    longest = 0
    for u in range(first, stop):
        longest = max(longest, offsets[u + 1] - offsets[u])
    kmax = 1
    for t in range(params.shape[0]):
        kmax = max(kmax, params[t, P_K])
    buckets = np.empty((3, longest), dtype=np.int64)
    bounds = np.empty((windows.shape[0], longest), dtype=np.int32)
    masks = np.empty((filters.shape[0], longest), dtype=np.uint8)
    prefix = np.empty((filters.shape[0], longest + 1), dtype=np.float64)
    counts = np.empty((filters.shape[0], longest + 1), dtype=np.int32)
    levels = 1
    while (1 << levels) <= longest:
        levels += 1
    sparse = np.empty((levels, longest), dtype=np.float64)
    log2 = np.zeros(longest + 1, dtype=np.int64)
    for m in range(2, longest + 1):
        log2[m] = log2[m // 2] + 1
    buf = np.empty(kmax, dtype=np.float64)
    for u in range(first, stop):
        s = offsets[u]
        e = offsets[u + 1]
        _user_targets(
            ts[s:e],
            amount[s:e],
            mcc[s:e],
            category[s:e],
            params,
            fills,
            windows,
            filters,
            mcc_tables,
            cat_tables,
            out[s - row0 : e - row0],
            buckets,
            bounds,
            masks,
            prefix,
            counts,
            sparse,
            log2,
            buf,
        )


@kernel
def _is_sorted(users, ts):
    """True when rows are ordered by user, then time. users, ts: (N,) int64."""
    for i in range(1, users.shape[0]):
        if users[i] < users[i - 1] or (users[i] == users[i - 1] and ts[i] < ts[i - 1]):
            return False
    return True
