"""Fake names from faker's en_US word lists, drawn many at a time with Arrow's string kernels.

NOTE: faker's own API is one Python call per name (a seeded Faker per consumer costs about
0.3 ms); a ledger names hundreds of thousands of merchants and consumers, so words are
picked here with the entity's own uniforms and joined column-wise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

join = pc.binary_join_element_wise


def pick_words(words: Mapping[str, float] | Sequence[str], u: np.ndarray) -> pa.Array:
    """A word per uniform in u: by frequency when `words` maps words to weights (faker's
    name lists do), else uniformly."""
    if isinstance(words, Mapping):
        cumulative = np.cumsum(np.fromiter(words.values(), float, len(words)))
        index = np.searchsorted(cumulative, u * cumulative[-1], side="right")
    else:
        index = (u * len(words)).astype(np.int64)
    return pa.array(list(words)).take(pa.array(np.minimum(index, len(words) - 1)))


def person_names(u: np.ndarray, female: np.ndarray) -> tuple[pa.Array, pa.Array]:
    """First and last names for uniforms u (n, 2), by US name frequencies."""
    from faker.providers.person.en_US import Provider as Person

    first = pc.if_else(
        pa.array(female),
        pick_words(Person.first_names_female, u[:, 0]),
        pick_words(Person.first_names_male, u[:, 0]),
    )
    return first, pick_words(Person.last_names, u[:, 1])


def street_addresses(u: np.ndarray) -> pa.Array:
    """Street addresses ("4821 Maple Avenue", "92 Jones Street Apt. 310") for uniforms u (n, 6)."""
    from faker.providers.address.en_US import Provider as Address
    from faker.providers.person.en_US import Provider as Person

    number = np.where(u[:, 0] < 0.5, 100 + u[:, 1] * 900, 1000 + u[:, 1] * 9000).astype(np.int64)
    name = pc.if_else(
        pa.array(u[:, 2] < 0.5),
        pick_words(Person.first_names, u[:, 3]),
        pick_words(Person.last_names, u[:, 3]),
    )
    suffix = pick_words(Address.street_suffixes, u[:, 4])
    street = join(pa.array(number).cast(pa.string()), name, suffix, " ")
    has_apartment = u[:, 5] < 0.25  # then u[:, 5] * 4 is uniform again: the number
    apartment = pa.array(100 + (u[:, 5] * 4 * 900).astype(np.int64)).cast(pa.string())
    return pc.if_else(pa.array(has_apartment), join(street, "Apt.", apartment, " "), street)


def company_names(u: np.ndarray, web: np.ndarray) -> pa.Array:
    """Company names in faker's en_US patterns ("Lopez LLC", "Hill-Moore", "Diaz, Cole and
    Reed"), or web domains where `web` is set, for uniforms u (n, 4)."""
    from faker.providers.company.en_US import Provider as Company
    from faker.providers.internet.en_US import Provider as Internet
    from faker.providers.person.en_US import Provider as Person

    last = list(Person.last_names)  # uniformly, as faker's company provider picks them

    def surnames(rows: np.ndarray, column: int) -> pa.Array:
        return pick_words(last, u[rows, column])

    # NOTE: each row's own pattern only, the rows of each joined apart: joining every
    # pattern for every row and choosing took 2.5 times as long (1.2 s a million names).
    pattern = u[:, 3]
    suffixed = np.flatnonzero(~web & (pattern < 0.4))
    hyphenated = np.flatnonzero(~web & (pattern >= 0.4) & (pattern < 0.75))
    partners = np.flatnonzero(~web & (pattern >= 0.75))
    sites = np.flatnonzero(web)
    return by_row(
        len(u),
        (suffixed, join(surnames(suffixed, 0), pick_words(Company.company_suffixes, u[suffixed, 1]), " ")),
        (hyphenated, join(surnames(hyphenated, 0), surnames(hyphenated, 1), "-")),
        (partners, join(surnames(partners, 0), join(surnames(partners, 1), surnames(partners, 2), " and "), ", ")),
        (sites, join(
            pc.utf8_lower(join(surnames(sites, 0), surnames(sites, 1), "-")),
            pick_words(Internet.tlds, u[sites, 2]),
            ".",
        )),
    )  # fmt: skip


def by_row(n: int, *parts: tuple[np.ndarray, pa.Array]) -> pa.Array:
    """n values gathered from parts (rows, values), where values[j] belongs to row rows[j]
    and the parts' rows together are each of 0..n-1 once."""
    order = np.empty(n, np.int64)
    start = 0
    for rows, _ in parts:
        order[rows] = np.arange(start, start + len(rows))
        start += len(rows)
    return pa.concat_arrays([values for _, values in parts]).take(pa.array(order))
