"""Calendar arithmetic on day numbers (days since 1970-01-01) inside kernels."""

from __future__ import annotations

from cardworld.simulator.kernels.jit import kernel


@kernel
def civil_from_days(day):
    """(year, month 1-12, day of month) of a day number, proleptic Gregorian (H. Hinnant)."""
    z = day + 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (1 if m <= 2 else 0), m, d


@kernel
def weekday(day):
    """Monday = 0 ... Sunday = 6."""
    return (day + 3) % 7
