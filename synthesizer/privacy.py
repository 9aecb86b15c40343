"""PII replacement and key rebuilding: what identifies people is never learned, only faked.

PII columns (names, card numbers, e-mails) are left out of the model. At sampling time each
synthetic group gets fresh fake values from faker, the same value on every row of the group,
and a value that occurs in the training data is never emitted: the model keeps only salted
hashes of the training values (never the values) and redraws on a match. Group keys and
per-row ids are rebuilt in the shape of the originals (per-position character alphabets, or
running integers). Rare categories are protected in the categorical codec.
"""

from __future__ import annotations

import hashlib
import secrets
from collections import Counter

import numpy as np
import pandas as pd
from faker import Faker

from cardworld.synthesizer.schema import Schema

_MAX_TRIES = 1000


class PiiReplacer:
    """Remembers the shape of keys and hashes of PII values; fills sampled tables."""

    def __init__(self, state: dict) -> None:
        self.state = state

    @classmethod
    def fit(cls, df: pd.DataFrame, schema: Schema) -> PiiReplacer:
        salt = secrets.token_hex(8)
        state: dict = {"salt": salt, "columns": {}}
        for spec in schema.columns:
            if spec.role not in ("pii", "group", "id", "order"):
                continue
            s = df[spec.name]
            entry: dict = {"role": spec.role, "provider": spec.pii, "dtype": str(s.dtype)}
            if spec.role in ("pii", "group", "id"):
                entry["hashes"] = sorted({_hash(salt, v) for v in s.dropna().unique()})
                entry["shape"] = _shape(s)
            if spec.role == "order":
                firsts = df.groupby(schema.group_by, sort=False)[spec.name].min()
                entry["start"] = int(Counter(firsts.tolist()).most_common(1)[0][0])
            state["columns"][spec.name] = entry
        return cls(state)

    def to_json(self) -> dict:
        return self.state

    def fill(self, df: pd.DataFrame, schema: Schema, seed: int) -> pd.DataFrame:
        """Add group keys, order, ids and PII to a decoded table with a ``__group`` column."""
        fake = Faker()
        fake.seed_instance(seed)
        rng = np.random.default_rng(seed)
        groups = df["__group"].to_numpy()
        n_groups = int(groups.max()) + 1 if len(groups) else 0
        out = {}
        for spec in schema.columns:
            entry = self.state["columns"].get(spec.name)
            if spec.role == "group":
                keys = self._fresh(entry, n_groups, fake, rng, provider=None)
                out[spec.name] = pd.Series(keys, dtype=object)[groups].to_numpy()
            elif spec.role == "pii":
                values = self._fresh(entry, n_groups, fake, rng, provider=spec.pii or "name")
                out[spec.name] = pd.Series(values, dtype=object)[groups].to_numpy()
            elif spec.role == "id":
                out[spec.name] = self._fresh(entry, len(df), fake, rng, provider=None)
            elif spec.role == "order":
                first = np.r_[True, groups[1:] != groups[:-1]] if len(groups) else groups
                run = np.arange(len(groups)) - np.maximum.accumulate(
                    np.where(first, np.arange(len(groups)), 0)
                )
                out[spec.name] = entry["start"] + run
            elif spec.name in df.columns:
                out[spec.name] = df[spec.name].to_numpy()
        result = pd.DataFrame(out, columns=[c for c in schema.names() if c in out])
        for name, entry in self.state["columns"].items():
            if entry.get("shape", {}).get("kind") == "int" and name in result:
                result[name] = result[name].astype(np.int64)
        return result

    def _fresh(
        self, entry: dict, n: int, fake: Faker, rng: np.random.Generator, provider: str | None
    ) -> list:
        """``n`` distinct values none of which hashes to a training value."""
        taken = set(entry["hashes"])
        out: list = []
        seen: set = set()
        shape = entry["shape"]
        counter = 1
        while len(out) < n:
            for _ in range(_MAX_TRIES):
                if provider is not None:
                    v = _faker_value(fake, provider)
                elif shape["kind"] == "int":
                    v, counter = counter, counter + 1
                else:
                    v = "".join(rng.choice(list(a)) for a in shape["alphabets"])
                if v not in seen and _hash(self.state["salt"], v) not in taken:
                    break
            else:  # the value space is nearly exhausted: fall back to an indexed value
                v = f"{v}-{len(out)}"
            seen.add(v)
            out.append(v)
        return out


def _faker_value(fake: Faker, provider: str) -> str:
    if provider == "bothify":
        return fake.bothify("??#######").upper()
    return str(getattr(fake, provider)())


def _shape(s: pd.Series) -> dict:
    """How keys look: integers, or strings with a per-position alphabet (most common length)."""
    if pd.api.types.is_integer_dtype(s):
        return {"kind": "int"}
    values = [str(v) for v in s.dropna().unique()]
    if not values:
        return {"kind": "str", "alphabets": ["X"]}
    length = Counter(len(v) for v in values).most_common(1)[0][0]
    same = [v for v in values if len(v) == length]
    alphabets = []
    for i in range(length):
        chars = {v[i] for v in same}
        # Widen a position to its whole character class, so a key is not built only from
        # characters seen at that position in few training keys.
        if len(chars) > 1 and all(c.isdigit() for c in chars):
            chars = set("0123456789")
        elif len(chars) > 1 and all(c.isupper() for c in chars):
            chars = set("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
        elif len(chars) > 1 and all(c.isdigit() or c in "ABCDEF" for c in chars):
            chars = set("0123456789ABCDEF")
        elif len(chars) > 1 and all(c.isdigit() or c in "abcdef" for c in chars):
            chars = set("0123456789abcdef")
        alphabets.append("".join(sorted(chars)))
    return {"kind": "str", "alphabets": alphabets}


def _hash(salt: str, value: object) -> str:
    if isinstance(value, np.generic):
        value = value.item()
    return hashlib.sha256(f"{salt}\x00{value}".encode()).hexdigest()[:20]
