"""Numba kernels for per-transaction targets: flat CSR arrays in, one (rows, targets) array out.

Users lie side by side in flat arrays cut by `offsets` (CSR). For each user, work shared by
targets is done once:
- window bounds (`bounds`): where each row's window starts, or stops for future windows.
  One pass gives every row the first row of its day, week and month (and a backward pass
  the row after its bucket); each rolling length is a merge of the rows with themselves
  shifted by the length;
- filter bits: one table lookup per row on its MCC and one on its category give a word
  whose bit f says whether filter f matches the row; from it, each filter's 0/1 mask or
  prefix sums and counts of the matching amounts.
Then each target is one short loop: sums, counts, means and labels are differences of
prefixes (branch-free, and an empty window is exactly 0); calendar min/max and top-k mean
keep a running best that restarts with each bucket. Rolling min, max and top-k mean cut
time into blocks as long as the window, so that every window is a suffix of one block and a
prefix of the next: a running best from each block's start and one back from its end answer
any row with one compare (or one merge of two top-k lists). Future calendar windows are the
same sweeps run backwards. Nothing is re-sorted.

NOTE: a target costs 1-3 ns a row, what its loop's chain of dependent operations (a running
extreme, a running sum) or its loads and stores take. Measured on a 2-core Xeon with
4,096-row users, several targets in one loop overlap their chains only where the loop is
compiled for exactly those targets: four sums of prefix differences written out in one loop
took 2.2 µs a target against 3.2 µs alone, three calendar maxima 4.9 µs against 11.5. The
same loops written once for any group of targets (each member's aggregate, filter and bounds
read before the loop, a branch per member inside it) ran slower than a loop per target
(three sums and a count 24 µs against 14), and so did one kernel generated from the plan
with all 20 of the benchmark's calendar targets in a forward and a backward sweep (295 µs a
user against 251), though each kind of target alone, generated, gained 15-35%. Splitting one
target's rows into four sweeps side by side, as `_fill_rolling` does, gained 30% on a
calendar maximum alone and nothing in the whole kernel.

The target encoding (`params`, `windows` and `filters` columns and codes, filter bit tables)
is defined here and filled by `plan.py`.
"""

from __future__ import annotations

from typing import NamedTuple

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

# Columns of the (n_targets, N_PARAMS) int64 `params` array.
P_WINDOW = 0  # row of `windows`
P_FILTER = 1  # row of `filters`
P_INCLUDE = 2
P_AGG = 3
P_K = 4
N_PARAMS = 5

# Columns of the (n_windows, 3) int64 `windows` array: one row per distinct window.
W_UNIT = 0
W_FUTURE = 1
W_LENGTH_US = 2  # rolling windows only

# Columns of the (n_filters, 2) int64 `filters` array: one row per distinct filter.
F_PREFIX = 0  # 1 when an additive target needs the filter's prefix sums and counts
F_MASK = 1  # 1 when a min/max/top-k target needs the filter's 0/1 mask

# Filter f is bit f % FILTER_BITS of word f // FILTER_BITS in the filter bit tables, which
# map an MCC code (mcc_bits) or a category code (cat_bits) to the filters it satisfies.
FILTER_BITS = 64

# MCC codes are looked up in tables of this width; slot MCC_NONE holds null or out-of-range MCCs.
MCC_NONE = 10_000
MCC_TABLE_WIDTH = MCC_NONE + 1

# min(amount, GATE[mask]) leaves an amount as it is (mask 1, the sign of a zero included) or
# makes it -inf (mask 0), without a branch.
GATE = np.array([-np.inf, np.inf])

# Rows of rolling top-k lists a scratch starts with; a user whose lists change more often
# grows it. NOTE: two lists a row (the most there can be) cost 16 (k + 2) bytes a row:
# 330 MB for k = 1024 and a 20,000-row user.
LIST_ROWS = 2048

# Rows of the `bounds` scratch: the first row of each row's day, week and month bucket
# (B_START + unit), the first row after it (B_END + unit), then two rows per window,
# used by rolling windows: B_ROLLING + w holds each row's window edge, and
# B_ROLLING + n_windows + w the first row of its block (`_fill_blocks`) for min, max and
# top-k targets; then a spare row (B_ROLLING + 2 n_windows) for the edges of a rolling
# window the plan lacks, which `_fill_rolling` writes beside those of its twin.
B_START = 0
B_END = 3
B_ROLLING = 6


class Scratch(NamedTuple):
    """One thread's working arrays, at least as long as its longest user (see `_scratch`)."""

    bounds: np.ndarray  # (B_ROLLING + 2 n_windows + 1, .) int32: window bounds
    words: np.ndarray  # (n_words, .) int64: filter bits of every row
    masks: np.ndarray  # (n_filters, .) uint8: 0/1 of every row, per filter
    prefix: np.ndarray  # (n_filters, . + 1) float64: sums of matching amounts before a row
    counts: np.ndarray  # (n_filters, . + 1) int32: and their number
    runs: np.ndarray  # (2, .) float64: `_extreme_rolling`'s running extremes
    lists: np.ndarray  # (rows, max k + 2) float64: `_rolling_topk`'s running top-k lists
    link: np.ndarray  # (2, .) int32: which of them is each row's
    buf: np.ndarray  # (max k,) float64: a running top k


@kernel(allocates=False)
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


@kernel(allocates=False)
def _first_day_of_month(month):
    """Day count since 1970-01-01 of the first day of a month index (Hinnant's
    days_from_civil); the inverse of `_month_index` on first days.

    month: int64 scalar, year * 12 + month - 1.
    """
    year = month // 12
    m = month - year * 12 + 1
    if m <= 2:
        year -= 1
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (m - 3 if m > 2 else m + 9) + 2) // 5
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


@kernel(allocates=False)
def _fill_calendar(ts, ends, bounds):
    """Calendar bounds of every row: rows B_START + unit and, with `ends`, B_END + unit.

    ts: (n,) int64 microseconds, local naive time, sorted. ends: whether a future calendar
    window needs them. bounds: (>= 6, >= n) int32. Row B_START + unit gets the first row of
    each row's day, week or month; row B_END + unit the first row after it. Weeks are ISO
    weeks (Monday first).
    """
    n = ts.shape[0]
    never = np.int64(-(2**62))
    next_day = never  # the first microsecond of the next day, and the first day of the
    next_week = never  # next week and of the next month
    next_month = never
    day_start, week_start, month_start = 0, 0, 0
    for i in range(n):
        # NOTE: times only grow, so a new day, week or month is one compare with its first
        # instant, and the division that finds a row's day runs once a day, not once a row:
        # 6.2 µs for 4,096 rows (one of 64 users read in turn) against 7.6 µs for working
        # out every row's day, and 1.2-1.5 times that for every row's week and month.
        if ts[i] >= next_day:
            day = ts[i] // US_PER_DAY
            day_start = i
            next_day = (day + 1) * US_PER_DAY
            if day >= next_week:
                week_start = i
                # 1970-01-01 was a Thursday: shifting by 3 days puts Mondays on multiples of 7.
                next_week = ((day + 3) // 7 + 1) * 7 - 3
            if day >= next_month:
                month_start = i
                next_month = _first_day_of_month(_month_index(day) + 1)
        bounds[B_START + UNIT_DAY, i] = day_start
        bounds[B_START + UNIT_WEEK, i] = week_start
        bounds[B_START + UNIT_MONTH, i] = month_start
    if not ends:
        return
    # NOTE: all units in one backward sweep (three sweeps ran 1.6 times as long), faster
    # than filling each bucket's ends when the next begins. Units without a future window
    # get ends too: cheaper than a test per row.
    for unit in range(3):
        bounds[B_END + unit, n - 1] = n
    day_end, week_end, month_end = n, n, n
    for i in range(n - 2, -1, -1):
        after = i + 1
        day_end = after if bounds[B_START + UNIT_DAY, after] == after else day_end
        week_end = after if bounds[B_START + UNIT_WEEK, after] == after else week_end
        month_end = after if bounds[B_START + UNIT_MONTH, after] == after else month_end
        bounds[B_END + UNIT_DAY, i] = day_end
        bounds[B_END + UNIT_WEEK, i] = week_end
        bounds[B_END + UNIT_MONTH, i] = month_end


@kernel(allocates=False)
def _fill_rolling(ts, length, past, future):
    """Where each row's rolling windows of `length` start (past) and stop (future), the
    current row included.

    ts: (n,) int64 microseconds, sorted. length: > 0 microseconds. past, future: (>= n,)
    int32. A past window is rows [past[i], i]: rows later than ts[i] - length. A future
    window is rows [i, future[i]): rows earlier than ts[i] + length.

    NOTE: one branch-free merge of the rows with their window edges gives both. The merge
    moves the past edge j past row j at the first row i with ts[j] + length <= ts[i]: that
    row is where row j's future window stops, so each step writes future[j] = i and the last
    write for row j is the right one: 13-15 µs for both edges of 4,096 rows, against 17-21 µs
    for the past edges and then the future ones from them. Each step is a chain of dependent
    loads and compares: the four quarters of the rows run as four merges side by side, so
    their chains overlap: 12 µs for 4,096 rows against 15.5 µs for two merges and 20 µs for
    one. A `while` loop moving the edge mispredicts about once a row; counting how many of
    the next four (or eight) rows the edge passes measured no faster.
    """
    n = ts.shape[0]
    q1, q2, q3 = n // 4, n // 2, 3 * n // 4
    i0, j0 = 0, 0
    i1, j1 = q1, _past_edge(ts, length, q1)
    i2, j2 = q2, _past_edge(ts, length, q2)
    i3, j3 = q3, _past_edge(ts, length, q3)
    s1, s2, s3 = j1, j2, j3
    while i0 < q1 and i1 < q2 and i2 < q3 and i3 < n:
        step0 = 1 if ts[j0] + length <= ts[i0] else 0
        step1 = 1 if ts[j1] + length <= ts[i1] else 0
        step2 = 1 if ts[j2] + length <= ts[i2] else 0
        step3 = 1 if ts[j3] + length <= ts[i3] else 0
        past[i0] = j0
        past[i1] = j1
        past[i2] = j2
        past[i3] = j3
        future[j0] = i0
        future[j1] = i1
        future[j2] = i2
        future[j3] = i3
        j0, i0 = j0 + step0, i0 + 1 - step0
        j1, i1 = j1 + step1, i1 + 1 - step1
        j2, i2 = j2 + step2, i2 + 1 - step2
        j3, i3 = j3 + step3, i3 + 1 - step3
    # Lanes finish at different steps: each runs its rest alone.
    _merge(ts, length, past, future, i0, j0, q1, s1)
    _merge(ts, length, past, future, i1, j1, q2, s2)
    _merge(ts, length, past, future, i2, j2, q3, s3)
    _merge(ts, length, past, future, i3, j3, n, n)
    # A lane's edge can end on the row where the next lane's began, and write it after the
    # next lane's last write: those rows are worked out again.
    for j in (s1, s2, s3):
        if j < n:
            future[j] = _future_edge(ts, length, j)


@kernel(allocates=False)
def _merge(ts, length, past, future, i, j, stop, j_stop):
    """`_fill_rolling`'s merge for rows [i, stop), from edge j. Rows [j, j_stop), which the
    edge does not pass before `stop`, have their future windows stop there."""
    while i < stop:
        step = 1 if ts[j] + length <= ts[i] else 0
        past[i] = j
        future[j] = i
        j, i = j + step, i + 1 - step
    for r in range(j, j_stop):
        future[r] = stop


@kernel(allocates=False)
def _past_edge(ts, length, i):
    """Where row i's past rolling window starts (`_fill_rolling`), by bisection."""
    lo, hi = 0, i
    while lo < hi:
        mid = (lo + hi) // 2
        if ts[mid] + length <= ts[i]:
            lo = mid + 1
        else:
            hi = mid
    return lo


@kernel(allocates=False)
def _future_edge(ts, length, i):
    """Where row i's future rolling window stops (`_fill_rolling`), by bisection."""
    lo, hi = i, ts.shape[0]
    while lo < hi:
        mid = (lo + hi) // 2
        if ts[mid] < ts[i] + length:
            lo = mid + 1
        else:
            hi = mid
    return lo


@kernel(allocates=False)
def _prefix_sums(amount, word, shift, prefix, counts, word2, shift2, prefix2, counts2):
    """Running sums and counts of the amounts of rows whose word has bit `shift` set, and
    the same for a second filter (word2, shift2, into prefix2 and counts2) side by side.

    amount: (n,) float64. word, word2: (>= n,) int64. prefix, prefix2: (>= n + 1,) float64
    and counts, counts2: (>= n + 1,) int32, where entry i covers rows [0, i).
    """
    # NOTE: multiplying by the 0/1 match keeps the loop branch-free (a `value if match else
    # 0.0` compiled to a branch that mispredicts on real filters) and the masking exact,
    # since amounts are finite. Each running sum is a chain of dependent adds; two filters in
    # one loop overlap their chains (a lone filter runs with itself as the second).
    # A window's sum, a difference of two running sums, is only as exact as they are large
    # (spec.py, Precision). Knuth's two-sum, keeping each addition's rounding error beside
    # the sum, made it as exact as summing the window, but cost 16-18% of 20 targets' time
    # (the 20 mixed and 20 calendar benchmark targets: 249 -> 289 and 156 -> 184 us a user).
    total, total2 = 0.0, 0.0
    count, count2 = 0, 0
    prefix[0], prefix2[0] = 0.0, 0.0
    counts[0], counts2[0] = 0, 0
    for i in range(amount.shape[0]):
        match = (word[i] >> shift) & 1
        match2 = (word2[i] >> shift2) & 1
        total += amount[i] * match
        total2 += amount[i] * match2
        count += match
        count2 += match2
        prefix[i + 1] = total
        prefix2[i + 1] = total2
        counts[i + 1] = count
        counts2[i + 1] = count2


@kernel(allocates=False)
def _fill_filters(
    amount, mcc, category, filters, mcc_bits, cat_bits, words, masks, prefix, counts, seen
):
    """Which filters every row matches, as bit words, masks, and prefix sums and counts.

    amount: (n,) float64. mcc, category: (n,) int32 codes. filters: (n_filters, 2) int64.
    mcc_bits: (n_words, MCC_TABLE_WIDTH) int64 and cat_bits: (n_words, n_categories + 1)
    int64, bit f % FILTER_BITS of word f // FILTER_BITS set when filter f matches the code
    (a filter without MCCs or categories is set in every category slot). words: (n_words,
    >= n) int64 scratch. masks: (n_filters, >= n) uint8, filled for filters with F_MASK.
    prefix: (n_filters, >= n + 1) float64 and counts: (n_filters, >= n + 1) int32, filled
    for filters with F_PREFIX, where entry i covers rows [0, i). seen: (n_words,) int64,
    or'ed with the words of every row: the filters some row matched.
    """
    n = amount.shape[0]
    for w in range(mcc_bits.shape[0]):
        by_mcc = mcc_bits[w]
        by_category = cat_bits[w]
        word = words[w]
        matched = 0
        for i in range(n):
            word[i] = by_mcc[mcc[i]] | by_category[category[i]]
            matched |= word[i]
        seen[w] |= matched
    pending = -1  # a filter whose prefix sums wait for a second to run beside
    for f in range(filters.shape[0]):
        word = words[f // FILTER_BITS]
        shift = f % FILTER_BITS
        if filters[f, F_MASK] != 0:
            mask = masks[f]
            for i in range(n):
                mask[i] = (word[i] >> shift) & 1
        if filters[f, F_PREFIX] != 0:
            if pending < 0:
                pending = f
                continue
            p = pending
            pending = -1
            _prefix_sums(
                amount, words[p // FILTER_BITS], p % FILTER_BITS, prefix[p], counts[p],
                word, shift, prefix[f], counts[f],
            )  # fmt: skip
    if pending >= 0:
        p = pending
        word = words[p // FILTER_BITS]
        _prefix_sums(
            amount, word, p % FILTER_BITS, prefix[p], counts[p],
            word, p % FILTER_BITS, prefix[p], counts[p],
        )  # fmt: skip


@kernel(allocates=False)
def _window(bounds, i, future, include):
    """Row i's window as rows [lo, hi), from `_fill_calendar` or `_fill_rolling` bounds:
    [bounds[i], i] for a past window, [i, bounds[i]) for a future one, without row i itself
    unless `include`."""
    keep = 1 if include else 0
    if future:
        return i + 1 - keep, bounds[i]
    return bounds[i], i + keep


@kernel(allocates=False)
def _additive(prefix, counts, bounds, future, include, agg, fill, out, col):
    """Sum, count, mean or any of each row's window from prefix differences.

    prefix: (n + 1,) float64, counts: (n + 1,) int32 as filled by `_fill_filters`.
    bounds: (>= n,) int32. out: (n, n_targets), column `col`.
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


@kernel(allocates=False)
def _extreme_calendar(amount, mask, bounds, future, include, sign, fill, out, col):
    """Max (sign 1.0) or min (sign -1.0) over each row's calendar window: a running extreme.

    amount: (n,) float64. mask: (>= n,) uint8. bounds: (>= n,) int32 calendar bounds.
    out: (n, n_targets), column `col`.
    """
    n = amount.shape[0]
    best = -np.inf
    # NOTE: a loop per direction. One loop choosing i = n - 1 - r or r per row swept 4,096
    # rows backwards in 9.5 µs (a rest of the month), this in 7.9 µs.
    if future:
        for r in range(n):
            i = n - 1 - r
            best = _extreme_row(
                amount, mask, i, bounds[i] == i + 1, include, sign, fill, best, out, col
            )
    else:
        for i in range(n):
            best = _extreme_row(
                amount, mask, i, bounds[i] == i, include, sign, fill, best, out, col
            )


@kernel(allocates=False)
def _extreme_row(amount, mask, i, first, include, sign, fill, best, out, col):
    """One row of `_extreme_calendar`: the running extreme `best` (restarted when row i is
    the `first` of its bucket) into out[i, col]; returns the running extreme after row i."""
    best = min(best, GATE[int(not first)])
    value = min(sign * amount[i], GATE[mask[i]])
    if include:
        best = max(best, value)
    out[i, col] = sign * best if best > -np.inf else fill
    if not include:
        best = max(best, value)
    return best


@kernel(allocates=False)
def _topk_clear(buf, k):
    """Empty a top-k list: every slot -inf. buf: (>= k,) float64."""
    for j in range(k):
        buf[j] = -np.inf


@kernel(allocates=False)
def _topk_insert(buf, count, k, value):
    """Insert `value` into buf[:k] (sorted descending, -inf in empty slots); returns the new
    count of finite slots. Callers insert only a finite value above buf[k - 1] (the count is
    then count + 1, at most k).

    buf: (>= k,) float64.
    """
    # NOTE: a compare-exchange down all k slots, without data-dependent exits: a shifting
    # loop that stopped at the value's place mispredicted its exit.
    for j in range(k):
        slot = buf[j]
        buf[j] = value if value > slot else slot
        value = slot if value > slot else value
    return min(count + 1, k)


@kernel(allocates=False)
def _topk_mean(buf, count, fill):
    """Mean of buf[:count], or fill when count is 0. buf: (>= count,) float64."""
    if count == 0:
        return fill
    total = 0.0
    for p in range(count):
        total += buf[p]
    return total / count


@kernel(allocates=False)
def _topk_calendar(amount, mask, bounds, future, include, k, fill, out, col, buf):
    """Mean of the k largest matching amounts in each row's calendar window.

    amount: (n,) float64. mask: (>= n,) uint8. bounds: (>= n,) int32 calendar bounds.
    out: (n, n_targets), column `col`. buf: (>= k,) float64 scratch holding the bucket's
    top k so far, sorted descending, -inf in empty slots.
    """
    n = amount.shape[0]
    count = 0
    value = fill
    _topk_clear(buf, k)
    # NOTE: a loop per direction, as in `_extreme_calendar`: 4,096 rows in 8.6 µs backwards
    # (a rest of the week) and 5.7 µs forwards (a month so far), from 9.7 and 8.4 µs.
    if future:
        for r in range(n):
            i = n - 1 - r
            first = bounds[i] == i + 1
            count, value = _topk_row(
                amount, mask, i, first, include, k, fill, out, col, buf, count, value
            )
    else:
        for i in range(n):
            first = bounds[i] == i
            count, value = _topk_row(
                amount, mask, i, first, include, k, fill, out, col, buf, count, value
            )


@kernel(allocates=False)
def _topk_row(amount, mask, i, first, include, k, fill, out, col, buf, count, value):
    """One row of `_topk_calendar`: the bucket's top k in buf (`count` finite, mean `value`),
    restarted when row i is the `first` of its bucket, into out[i, col]; returns the count
    and mean after row i."""
    if first:
        count = 0
        value = fill
        _topk_clear(buf, k)
    # NOTE: non-matching rows become -inf, so the common case is one compare, no branch on
    # mask: a value enters the top k only when above its k-th (-inf until it has k).
    entering = min(amount[i], GATE[mask[i]])
    if include and entering > buf[k - 1]:
        count = _topk_insert(buf, count, k, entering)
        value = _topk_mean(buf, count, fill)
    out[i, col] = value
    if not include and entering > buf[k - 1]:
        count = _topk_insert(buf, count, k, entering)
        value = _topk_mean(buf, count, fill)
    return count, value


@kernel(allocates=False)
def _topk_calendar_k3(amount, mask, bounds, future, include, k, fill, out, col, buf):
    """`_topk_calendar` (arguments as there), compiled apart for k = 3, the usual choice.

    NOTE: with k known when compiling, a sweep of 4,096 rows ran in 8 µs instead of 11.6 µs,
    though a value enters the top k at only a few percent of the rows. Each copy costs about
    half a second of compile time on first use, so only the common k has one.
    """
    if k == 3:
        _topk_calendar(amount, mask, bounds, future, include, 3, fill, out, col, buf)
    else:
        _topk_calendar(amount, mask, bounds, future, include, k, fill, out, col, buf)


@kernel(allocates=False)
def _fill_blocks(ts, length, start):
    """First row of each row's block, where blocks cut time at multiples of `length`.

    ts: (n,) int64 microseconds, sorted. length: > 0 microseconds. start: (>= n,) int32.
    A rolling window of `length`, past or future, lies within two adjacent blocks: the
    rolling min, max and top-k mean answer it from running results within blocks.
    """
    never = np.int64(-(2**62))
    next_block = never
    first = 0
    for i in range(ts.shape[0]):
        if ts[i] >= next_block:
            first = i
            next_block = (ts[i] // length + 1) * length
        start[i] = first


@kernel(allocates=False)
def _split(bounds, start, i, future, include):
    """Row i's rolling window [lo, hi) as a suffix of one block and a prefix of the next.

    Returns the first row lo, the last row hi - 1, and whether the suffix of lo's block
    from lo and the prefix of (hi - 1)'s block up to hi - 1 lie in the window. An empty
    window uses neither (its two rows are then only rows within bounds).
    bounds: (>= n,) int32 rolling bounds. start: (>= n,) int32 from `_fill_blocks`.
    """
    lo, hi = _window(bounds, i, future, include)
    last = max(hi - 1, 0)
    first = start[last]
    # lo < first: the window spans both blocks. lo == first: it is the prefix. lo > first:
    # it is a suffix ending at its block's end: a future window holds the rest of row i's
    # block (the next block starts within its length), and a past window without row i
    # that lies in one block ends where row i's block begins.
    return min(lo, last), last, hi > lo and lo != first, hi > lo and lo <= first


@kernel(allocates=False)
def _extreme_rolling(amount, mask, bounds, start, future, include, sign, fill, out, col, runs):
    """Max (sign 1.0) or min (sign -1.0) over each row's rolling window.

    amount: (n,) float64. mask: (>= n,) uint8. bounds: (>= n,) int32 rolling bounds.
    start: (>= n,) int32 block starts (`_fill_blocks`) for the window's length.
    out: (n, n_targets), column `col`. runs: (2, >= n) float64 scratch.

    NOTE: van Herk / Gil-Werman with blocks cut in time: a running extreme from each
    block's start (runs[0]) and one back from its end (runs[1]), then each row's answer is
    one compare of the two, whatever the window's width. For 4,096 rows and a 7-day window
    a sparse table (log2(width) sweeps) ran 21 µs and this 17 µs; for 365-day windows a
    max target took 30% less time in all.
    """
    n = amount.shape[0]
    ahead, behind = runs[0], runs[1]
    # NOTE: each running extreme is a chain of dependent compares; running both in one loop
    # overlaps the two chains (19.5 µs in two loops).
    forward, backward = -np.inf, -np.inf
    for i in range(n):
        j = n - 1 - i
        value = min(sign * amount[i], GATE[mask[i]])
        forward = max(min(forward, GATE[int(start[i] != i)]), value)  # a block's first row restarts
        ahead[i] = forward
        value = min(sign * amount[j], GATE[mask[j]])
        backward = max(backward, value)
        behind[j] = backward
        backward = min(backward, GATE[int(start[j] != j)])  # row j - 1 is in another block
    for i in range(n):
        lo, last, use_suffix, use_prefix = _split(bounds, start, i, future, include)
        a = min(behind[lo], GATE[int(use_suffix)])
        b = min(ahead[last], GATE[int(use_prefix)])
        best = a if a > b else b
        out[i, col] = sign * best if best > -np.inf else fill


@kernel(allocates=False)
def _keep_list(lists, written, top, k, count):
    """Write a running top k as the next row of `lists`: [0, sums of its 1..k largest,
    count]; returns the row, or -1 when `lists` is full."""
    written += 1
    if written >= lists.shape[0]:
        return -1
    row = lists[written]
    row[0] = 0.0
    for t in range(k):
        row[t + 1] = row[t] + top[t]
    row[k + 1] = count
    return written


@kernel(allocates=False)
def _block_lists(amount, mask, start, backward, k, lists, written, link, top):
    """Running top-k lists within blocks: from each block's start, or back from its end.

    Rows whose list changes (or that begin a block) write it to the next row of `lists`
    after `written` (`_keep_list`); link[i] names row i's. Returns the last row written,
    or -1 when `lists` is full. top: (>= k,) float64 scratch.
    """
    n = amount.shape[0]
    count = 0
    for r in range(n):
        i = n - 1 - r if backward else r
        fresh = (i == n - 1 or start[i + 1] == i + 1) if backward else start[i] == i
        if fresh:
            _topk_clear(top, k)
            count = 0
        value = min(amount[i], GATE[mask[i]])
        grows = value > top[k - 1]
        if grows:
            count = _topk_insert(top, count, k, value)
        if grows or fresh:
            written = _keep_list(lists, written, top, k, count)
            if written < 0:
                return -1
        link[i] = written
    return written


@kernel(allocates=False)
def _rolling_topk(
    amount, mask, bounds, start, future, include, k, fill, out, col, lists, link, top
):
    """Mean of the k largest matching amounts in each row's rolling window.

    amount: (n,) float64. mask: (>= n,) uint8. bounds: (>= n,) int32 rolling bounds.
    start: (>= n,) int32 block starts (`_fill_blocks`) for the window's length.
    out: (n, n_targets), column `col`. Scratch: lists (rows, >= k + 2) float64, link
    (2, >= n) int32, top (>= k,) float64. Returns 0, or, when the lists need more rows than
    `lists` has, a number of rows that is enough (the caller grows it and runs the user again).

    NOTE: `_extreme_rolling`'s blocks with a top k in place of an extreme: a running top k
    from each block's start and one back from its end. A list changes at few rows, so only
    those rows write one (as sums: list[t] is the sum of its t largest, -inf past its count
    in list[k + 1]), and link[0][p] and link[1][p] name row p's two lists. A window's sum
    of its m largest is the best split of m between its suffix's and its prefix's lists:
    the max over t of suffix[t] + prefix[m - t]. For 4,096 rows, a 30-day window and k = 3,
    a two-stack queue ran 39 µs and this 35 µs (42 µs without k compiled in).
    """
    n = amount.shape[0]
    # Row 0 of `lists` is the empty list, read in place of a list the window does not use.
    _topk_clear(top, k)
    written = _keep_list(lists, -1, top, k, 0)
    if written >= 0:
        written = _block_lists(amount, mask, start, False, k, lists, written, link[0], top)
    if written >= 0:
        written = _block_lists(amount, mask, start, True, k, lists, written, link[1], top)
    if written < 0:
        return 2 * n + 1
    ahead, behind = link[0], link[1]
    # NOTE: most rows' windows use the same two lists as the row before (a list changes at
    # few rows): the mean is worked out again only when one of them changes. 9 µs for the
    # 4,096 rows' answers against 15 µs when every row merged its two lists.
    seen_suffix, seen_prefix, mean = -1, -1, fill
    for i in range(n):
        lo, last, use_suffix, use_prefix = _split(bounds, start, i, future, include)
        s = behind[lo] if use_suffix else 0
        p = ahead[last] if use_prefix else 0
        if s != seen_suffix or p != seen_prefix:
            seen_suffix, seen_prefix = s, p
            suffix, prefix = lists[s], lists[p]
            m = min(k, int(suffix[k + 1] + prefix[k + 1]))
            best = -np.inf
            # Splits taking more rows from a list than it has are -inf: a fixed-length loop.
            for t in range(m + 1):
                best = max(best, suffix[t] + prefix[m - t])
            mean = best / m if m > 0 else fill
        out[i, col] = mean
    return 0


@kernel(allocates=False)
def _rolling_topk_k3(
    amount, mask, bounds, start, future, include, k, fill, out, col, lists, link, top
):
    """`_rolling_topk` (arguments as there), compiled apart for k = 3 (see `_topk_calendar_k3`)."""
    if k == 3:
        return _rolling_topk(
            amount, mask, bounds, start, future, include, 3, fill, out, col, lists, link, top
        )
    return _rolling_topk(
        amount, mask, bounds, start, future, include, k, fill, out, col, lists, link, top
    )


@kernel(allocates=False)
def _ranks_rolling(params, w):
    """Whether a min, max or top-k mean target reads window w (rolling: it needs blocks)."""
    for t in range(params.shape[0]):
        agg = params[t, P_AGG]
        if params[t, P_WINDOW] == w and (agg == AGG_MIN or agg == AGG_MAX or agg == AGG_TOPK):
            return True
    return False


@kernel(allocates=False)
def _rolling_rows(windows, w):
    """Rows of `bounds` for the past and the future rolling windows as long as rolling
    window w (the spare row for one the plan lacks), and whether w is the first
    window of its length (the one that fills them)."""
    n_windows = windows.shape[0]
    past = future = B_ROLLING + 2 * n_windows
    first = True
    for v in range(n_windows):
        same = windows[v, W_UNIT] == UNIT_ROLLING
        if same and windows[v, W_LENGTH_US] == windows[w, W_LENGTH_US]:
            first &= v >= w
            if windows[v, W_FUTURE] != 0:
                future = B_ROLLING + v
            else:
                past = B_ROLLING + v
    return past, future, first


@kernel(allocates=False)
def _user_targets(
    ts,
    amount,
    mcc,
    category,
    params,
    fills,
    windows,
    filters,
    mcc_bits,
    cat_bits,
    out,
    scratch,
    seen,
):
    """All targets of one user.

    ts: (n,) int64 microseconds, sorted. amount: (n,) float64. mcc, category: (n,) int32 codes.
    params: (n_targets, N_PARAMS) int64. fills: (n_targets,) float64. windows: (n_windows, 3)
    int64. filters, mcc_bits, cat_bits as `_fill_filters` takes them. out: (n, n_targets)
    float32 or float64, column-major (each target's column contiguous) for speed, though any
    layout works. scratch: a `Scratch` at least n long. seen: (n_words,) int64, or'ed with
    the filter bits of every row (`_fill_filters`). Returns 0, or the rows rolling top-k
    targets need when `scratch.lists` has fewer (grow it and call again).
    """
    n = ts.shape[0]
    if n == 0:
        return 0
    bounds, masks, prefix, counts = scratch.bounds, scratch.masks, scratch.prefix, scratch.counts
    calendar = False
    ends = False
    for w in range(windows.shape[0]):
        unit = windows[w, W_UNIT]
        if unit != UNIT_ROLLING:
            calendar = True
            ends |= windows[w, W_FUTURE] != 0
        else:
            past, future, first = _rolling_rows(windows, w)
            if first:
                _fill_rolling(ts, windows[w, W_LENGTH_US], bounds[past], bounds[future])
    if calendar:
        _fill_calendar(ts, ends, bounds)
    for w in range(windows.shape[0]):
        if windows[w, W_UNIT] == UNIT_ROLLING and _ranks_rolling(params, w):
            _fill_blocks(ts, windows[w, W_LENGTH_US], bounds[B_ROLLING + windows.shape[0] + w])
    _fill_filters(
        amount,
        mcc,
        category,
        filters,
        mcc_bits,
        cat_bits,
        scratch.words,
        masks,
        prefix,
        counts,
        seen,
    )
    for t in range(params.shape[0]):
        w = params[t, P_WINDOW]
        f = params[t, P_FILTER]
        unit = windows[w, W_UNIT]
        rolling = unit == UNIT_ROLLING
        future = windows[w, W_FUTURE] != 0
        if rolling:
            row = B_ROLLING + w
        else:
            row = (B_END if future else B_START) + unit
        include = params[t, P_INCLUDE] != 0
        agg = params[t, P_AGG]
        if agg == AGG_MIN or agg == AGG_MAX or agg == AGG_TOPK:
            sign = -1.0 if agg == AGG_MIN else 1.0
            k = params[t, P_K] if agg == AGG_TOPK else 1
            mask = masks[f]
            start = bounds[B_ROLLING + windows.shape[0] + w]  # rolling windows' blocks
            if rolling and agg == AGG_TOPK:
                need = _rolling_topk_k3(
                    amount, mask, bounds[row], start, future, include, k, fills[t], out, t,
                    scratch.lists, scratch.link, scratch.buf,
                )  # fmt: skip
                if need > 0:
                    return need
            elif rolling:
                _extreme_rolling(
                    amount, mask, bounds[row], start, future, include, sign, fills[t], out, t,
                    scratch.runs,
                )  # fmt: skip
            elif agg == AGG_TOPK:
                _topk_calendar_k3(
                    amount, mask, bounds[row], future, include, k, fills[t], out, t, scratch.buf
                )
            else:
                _extreme_calendar(
                    amount, mask, bounds[row], future, include, sign, fills[t], out, t
                )
        else:
            _additive(prefix[f], counts[f], bounds[row], future, include, agg, fills[t], out, t)
    return 0


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
    mcc_bits,
    cat_bits,
    out,
    row0,
    seen,
):
    """Targets of users [first, stop) in one thread, with scratch allocated once.

    offsets: (n_users + 1,) int64 CSR row offsets into ts, amount, mcc, category ((N,) each).
    out: (rows, n_targets) float32/float64, column-major; user rows [offsets[u], offsets[u+1])
    go to out rows shifted by -row0. seen: (n_words,) int64, or'ed with the filters some
    row matched (bit f % FILTER_BITS of word f // FILTER_BITS). Other arrays as in
    `_user_targets`.
    """
    longest = 0
    for u in range(first, stop):
        longest = max(longest, offsets[u + 1] - offsets[u])
    plan = (params, fills, windows, filters, mcc_bits, cat_bits)
    scratch = _scratch(longest, params, windows, filters, mcc_bits, min(2 * longest + 1, LIST_ROWS))
    for u in range(first, stop):
        s = offsets[u]
        e = offsets[u + 1]
        user = (ts[s:e], amount[s:e], mcc[s:e], category[s:e])
        need = _user_targets(*user, *plan, out[s - row0 : e - row0], scratch, seen)
        while need > 0:  # more rolling top-k lists than the scratch holds: grow it, redo the user
            scratch = _scratch(longest, params, windows, filters, mcc_bits, need)
            need = _user_targets(*user, *plan, out[s - row0 : e - row0], scratch, seen)


@kernel
def _scratch(longest, params, windows, filters, mcc_bits, list_rows):
    """A `Scratch` for users of up to `longest` rows and the plan's targets, with room for
    `list_rows` rolling top-k lists (none without such targets)."""
    kmax = 1
    rolling_topk = False
    for t in range(params.shape[0]):
        kmax = max(kmax, params[t, P_K])
        if params[t, P_AGG] == AGG_TOPK:
            rolling_topk |= windows[params[t, P_WINDOW], W_UNIT] == UNIT_ROLLING
    n_filters = filters.shape[0]
    return Scratch(
        bounds=np.empty((B_ROLLING + 2 * windows.shape[0] + 1, longest), dtype=np.int32),
        words=np.empty((mcc_bits.shape[0], longest), dtype=np.int64),
        masks=np.empty((n_filters, longest), dtype=np.uint8),
        prefix=np.empty((n_filters, longest + 1), dtype=np.float64),
        counts=np.empty((n_filters, longest + 1), dtype=np.int32),
        runs=np.empty((2, longest), dtype=np.float64),
        lists=np.empty((list_rows if rolling_topk else 0, kmax + 2), dtype=np.float64),
        link=np.empty((2, longest), dtype=np.int32),
        buf=np.empty(kmax, dtype=np.float64),
    )


@kernel
def _is_sorted(users, ts):
    """True when rows are ordered by user, then time. users, ts: (N,) int64."""
    for i in range(1, users.shape[0]):
        if users[i] < users[i - 1] or (users[i] == users[i - 1] and ts[i] < ts[i - 1]):
            return False
    return True
