"""The public synthesizer: fit a grouped, ordered table, sample new groups, save and load.

This file only orchestrates: schema inference, codec, windows, training and sampling live in
their own modules. A fitted synthesizer is a directory with ``model.safetensors`` (weights)
and ``synthesizer.json`` (config, schema, codec stats, key shapes and PII hashes); loading it
never unpickles anything.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import json
import math
import os
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_model, save_model

from cardworld.errors import ConfigError, DataError, reason
from cardworld.simulator import ledger
from cardworld.synthesizer import codec as codec_pkg
from cardworld.synthesizer.codec import TableCodec
from cardworld.synthesizer.codec import datetime as datetime_codec
from cardworld.synthesizer.codec.categorical import RARE_VALUES
from cardworld.synthesizer.codec.table import sort_table
from cardworld.synthesizer.model import ModelConfig, SequenceModel
from cardworld.synthesizer.privacy import PiiReplacer
from cardworld.synthesizer.sample import SampleRequest, concat, generate
from cardworld.synthesizer.schema import Schema, check_table, infer_schema
from cardworld.synthesizer.train import TrainConfig, make_windows, train

FORMAT = 1
MAX_VAL_WINDOWS = 1024  # windows a validation pass reads at most (a seeded sample)
WEIGHTS, MANIFEST = "model.safetensors", "synthesizer.json"
LENGTH_LEVELS = np.linspace(0.0, 1.0, 21)  # the quantiles kept of the groups' log lengths
LENGTH_STREAM = 0x1E  # a numpy seed word of its own for group lengths


@dataclass
class SynthesizerConfig:
    """Every knob of the synthesizer; validated on construction."""

    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 512
    dropout: float = 0.1
    batch_size: int = 64
    learning_rate: float = 2e-3
    max_epochs: int = 100
    patience: int = 5
    max_minutes: float | None = None
    val_fraction: float = 0.1
    n_bins: int = 64
    n_sub: int = 64
    rare_threshold: int = 5
    max_categories: int = 1000
    # What sampling writes where the model chose the rare-category token of a text column:
    # "placeholder" (new values <rare 1>, <rare 2>, ...) or "drop" (another category
    # instead); see codec/categorical.py.
    rare_values: str = "placeholder"
    seed: int = 0
    device: str = "auto"
    # How many events a fresh group gets: "fitted" draws it from the training groups'
    # length distribution (kept as 21 quantiles of the log length, not the lengths); "model"
    # lets the model's end-of-group token decide, which small tables teach poorly.
    group_lengths: str = "fitted"

    def __post_init__(self) -> None:
        for name in (
            "n_layer",
            "n_head",
            "n_embd",
            "block_size",
            "batch_size",
            "max_epochs",
            "patience",
            "n_bins",
            "n_sub",
            "max_categories",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"synthesizer config {name!r} is {value!r}; expected an int >= 1")
        if self.n_embd % self.n_head:
            raise ConfigError(
                f"synthesizer config n_embd={self.n_embd} is not a multiple of "
                f"n_head={self.n_head}; expected n_embd % n_head == 0"
            )
        if not 0.0 <= self.val_fraction < 1.0:
            raise ConfigError(f"val_fraction is {self.val_fraction}; expected 0 <= value < 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout is {self.dropout}; expected 0 <= value < 1")
        if self.rare_threshold < 1:
            raise ConfigError(f"rare_threshold is {self.rare_threshold}; expected >= 1")
        if self.rare_values not in RARE_VALUES:
            raise ConfigError(
                f"rare_values is {self.rare_values!r}; expected one of {', '.join(RARE_VALUES)}"
            )
        if self.group_lengths not in ("fitted", "model"):
            raise ConfigError(
                f"group_lengths is {self.group_lengths!r}; expected 'fitted' or 'model'"
            )
        if self.device not in ("auto", "cpu") and not self.device.startswith("cuda"):
            raise ConfigError(f"device is {self.device!r}; expected 'auto', 'cpu' or 'cuda[:N]'")

    @classmethod
    def from_json(cls, data: dict) -> SynthesizerConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"unknown synthesizer config keys {unknown}; expected {sorted(known)}"
            )
        return cls(**data)


class Synthesizer:
    """``Synthesizer(...).fit(df, group_by=..., order_by=...).sample(n_groups=..., seed=...)``."""

    def __init__(self, config: SynthesizerConfig | None = None, **overrides: object) -> None:
        base = asdict(config) if config is not None else {}
        self.config = SynthesizerConfig.from_json({**base, **overrides})
        self.codec: TableCodec | None = None
        self.model: SequenceModel | None = None
        self.pii: PiiReplacer | None = None
        self.max_events = 0
        self.length_quantiles: np.ndarray | None = None  # of log group lengths, 0%..100%
        self.fit_info: dict = {}

    # -- fitting ------------------------------------------------------------------------
    def fit(
        self,
        df: pd.DataFrame,
        *,
        group_by: str,
        order_by: str | None = None,
        roles: dict[str, str] | None = None,
        subjects: pd.DataFrame | None = None,
        progress: bool | Callable[[dict], None] = False,
    ) -> Synthesizer:
        """Learn ``df`` (one row per event); ``subjects`` adds one row of attributes per group."""
        cfg = self.config
        subject_columns = None
        if subjects is not None:
            df, subject_columns = _join_subjects(df, subjects, group_by)
        schema = infer_schema(
            df, group_by=group_by, order_by=order_by, roles=roles, subject_columns=subject_columns
        )
        if not schema.by_role("event"):
            raise DataError(
                f"no event columns to learn: every column is a key, PII or static "
                f"({[(c.name, c.role) for c in schema.columns]}); expected at least one column "
                "that varies within a group"
            )
        df = sort_table(df, schema)
        codec = TableCodec.analyze(
            df,
            schema,
            n_bins=cfg.n_bins,
            n_sub=cfg.n_sub,
            rare_threshold=cfg.rare_threshold,
            max_categories=cfg.max_categories,
            rare_values=cfg.rare_values,
        )
        enc = codec.encode(df)
        lengths = np.diff(enc.starts)
        self.max_events = int(lengths.max())
        self.length_quantiles = np.quantile(np.log(lengths), LENGTH_LEVELS)
        # A window never needs to be longer than the longest group's whole history.
        block = min(cfg.block_size, codec.n_static + 2 + self.max_events * codec.event_width)
        block = max(block, codec.n_static + 2 + codec.event_width)
        codec.events_per_window(block)

        rng = np.random.default_rng(cfg.seed)
        order = rng.permutation(enc.n_groups)
        n_val = int(round(cfg.val_fraction * enc.n_groups)) if enc.n_groups >= 10 else 0
        val_groups, train_groups = np.sort(order[:n_val]), np.sort(order[n_val:])
        train_data = make_windows(enc, codec, block, train_groups)
        val_data = make_windows(enc, codec, block, val_groups) if n_val else None
        if val_data is not None and val_data[0].shape[0] > MAX_VAL_WINDOWS:
            # NOTE: a validation pass runs every epoch and once more when the time budget is
            # spent; over every window of a large table it outlasted the budget (148k rows of
            # 28 columns on two CPU cores: a 60 s budget, 149 s in all). A fixed sample of
            # windows estimates the same loss.
            keep = np.sort(rng.choice(val_data[0].shape[0], MAX_VAL_WINDOWS, replace=False))
            val_data = (val_data[0][keep], val_data[1][keep])

        device = _device(cfg.device)
        torch.manual_seed(cfg.seed)
        model_config = ModelConfig(
            vocab_size=codec.vocab_size,
            n_fields=len(codec.fields),
            block_size=block,
            n_layer=cfg.n_layer,
            n_head=cfg.n_head,
            n_embd=cfg.n_embd,
            dropout=cfg.dropout,
            # Rotary embeddings turn pairs of a head's features: none for an odd head size.
            rotary=(cfg.n_embd // cfg.n_head) % 2 == 0,
        )
        model = _build_model(model_config, codec)
        callback = _rich_progress() if progress is True else (progress or None)
        t0 = time.perf_counter()
        try:
            result = train(
                model,
                train_data,
                val_data,
                field_bias=_field_bias(codec),
                config=TrainConfig(
                    batch_size=cfg.batch_size,
                    learning_rate=cfg.learning_rate,
                    max_epochs=cfg.max_epochs,
                    patience=cfg.patience,
                    max_minutes=cfg.max_minutes,
                    seed=cfg.seed,
                ),
                device=device,
                on_progress=callback,
            )
        finally:
            if hasattr(callback, "close"):
                callback.close()
        self.codec, self.model = codec, model.cpu()
        self.pii = PiiReplacer.fit(df, schema)
        self.fit_info = {
            "rows": len(df),
            "groups": enc.n_groups,
            "train_windows": int(train_data[0].shape[0]),
            "val_groups": n_val,
            "val_windows": 0 if val_data is None else int(val_data[0].shape[0]),
            "parameters": model.num_parameters(),
            "vocab_size": codec.vocab_size,
            "event_width": codec.event_width,
            "block_size": block,
            "epochs": result.epochs,
            "steps": result.steps,
            "best_val_loss": result.best_val_loss,
            "train_loss": result.train_loss,
            "seconds": time.perf_counter() - t0,
            "device": str(device),
        }
        return self

    # -- sampling -----------------------------------------------------------------------
    def sample(
        self,
        n_groups: int | None = None,
        *,
        seed: int = 0,
        static: pd.DataFrame | None = None,
        history: pd.DataFrame | None = None,
        max_events: int | None = None,
        temperature: float = 1.0,
        batch_size: int = 512,
        as_tables: bool = False,
        progress: bool | Callable[[dict], None] = False,
    ) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
        """Sample groups: ``n_groups`` fresh ones, one per row of ``static`` (those attributes
        fixed), or a continuation of every group of ``history``. Same seed, same device: same
        rows. ``progress``: True for a progress bar, or a callable given {"step", "total"}
        after each event step of a batch (total: the steps the batches can take at most)."""
        codec, model, pii = self._fitted()
        schema = codec.schema
        if temperature <= 0:
            raise ConfigError(f"temperature is {temperature}; expected > 0")
        max_events = max_events or 2 * self.max_events
        device = _device(self.config.device)
        model.to(device)
        allowed = torch.as_tensor(codec.allowed_mask(), device=device)
        generator = torch.Generator(device=device).manual_seed(seed)
        keep_keys = None
        if history is not None:
            check_table(history, group_by=schema.group_by, order_by=schema.order_by)
            hist = sort_table(history, schema)
            enc = codec.encode(hist)
            requests = [
                SampleRequest(
                    enc.prefix[i : i + batch_size],
                    [enc.group_events(g) for g in range(i, min(i + batch_size, enc.n_groups))],
                )
                for i in range(0, enc.n_groups, batch_size)
            ]
            keep_keys = hist.groupby(schema.group_by, sort=False).first().reset_index()
        else:
            forced = self._forced_prefix(n_groups, static)
            lengths = self._group_lengths(len(forced), max_events, seed)
            requests = [
                SampleRequest(
                    forced[i : i + batch_size],
                    lengths=None if lengths is None else lengths[i : i + batch_size],
                )
                for i in range(0, len(forced), batch_size)
            ]
        # A batch takes as many event steps as its longest group: known when lengths are
        # drawn, else at most max_events.
        total = sum(max_events if r.lengths is None else int(max(r.lengths)) for r in requests)
        callback = _rich_sample_progress() if progress is True else (progress or None)
        steps = 0

        def on_event() -> None:
            nonlocal steps
            steps += 1
            if callback is not None:
                callback({"step": steps, "total": max(total, steps)})

        try:
            parts = [
                generate(
                    model,
                    codec,
                    r,
                    allowed=allowed,
                    max_events=max_events,
                    generator=generator,
                    temperature=temperature,
                    on_event=on_event,
                )
                for r in requests
            ]
        finally:
            if hasattr(callback, "close"):
                callback.close()
        model.cpu()
        given = None if history is None else np.diff(enc.starts)  # the history's own events
        decoded = codec.decode(concat(parts), np.random.default_rng(seed), given)
        out = pii.fill(decoded, schema, seed)
        if keep_keys is not None:
            # A continued history keeps its own key and PII: they are the caller's data.
            group = out.groupby(schema.group_by, sort=False).ngroup().to_numpy()
            for spec in schema.by_role("group", "pii"):
                out[spec.name] = keep_keys[spec.name].to_numpy()[group]
            out = _with_given_rows(out, hist, given, schema.group_by)
        if as_tables:
            return _split_tables(out, schema)
        return out

    def _group_lengths(self, n: int, max_events: int, seed: int) -> np.ndarray | None:
        """Events per fresh group, drawn from the fitted length distribution (None: the
        model decides): the quantile function, linear in log length, at n uniforms."""
        if self.config.group_lengths != "fitted" or self.length_quantiles is None:
            return None
        u = np.random.default_rng([seed, LENGTH_STREAM]).random(n)
        lengths = np.rint(np.exp(np.interp(u, LENGTH_LEVELS, self.length_quantiles)))
        return np.clip(lengths, 1, max_events).astype(np.int64)

    def _forced_prefix(self, n_groups: int | None, static: pd.DataFrame | None) -> np.ndarray:
        codec = self.codec
        assert codec is not None
        if static is None:
            if n_groups is None or n_groups < 1:
                raise ConfigError(f"n_groups is {n_groups!r}; expected an int >= 1 (or static=)")
            return np.full((n_groups, codec.n_static), -1, dtype=np.int64)
        unknown = [c for c in static.columns if c not in codec.static_columns]
        if unknown:
            raise ConfigError(
                f"static= names columns {unknown} that are not static attributes; "
                f"expected some of {codec.static_columns}"
            )
        forced = np.full((len(static), codec.n_static), -1, dtype=np.int64)
        for i, f in enumerate(codec.fields[: codec.n_static]):
            if f.column in static.columns:
                codes = _encode_column(static[f.column], codec.stats[f.column])
                if codec.stats[f.column]["kind"] == "categorical":
                    learned = codec.stats[f.column]["categories"]
                    bad = static[f.column][codes[f.sub] >= len(learned)]
                    if len(bad) and not learned:
                        raise DataError(
                            f"static column {f.column!r}: the model learned none of its values "
                            f"(each was held by fewer than rare_threshold = "
                            f"{self.config.rare_threshold} groups), so it cannot be conditioned "
                            "on; leave it out of static="
                        )
                    if len(bad):
                        raise DataError(
                            f"static column {f.column!r} has value {bad.iloc[0]!r}, which the "
                            f"model has not learned (held by fewer than rare_threshold = "
                            f"{self.config.rare_threshold} groups); expected one of {learned[:20]}"
                        )
                forced[:, i] = f.offset + codes[f.sub]
        return forced

    # -- persistence --------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the model directory ``path``: staged beside it and renamed into place when
        complete, so a failed save leaves what was there before. An existing synthesizer
        directory is replaced; any other non-empty directory, or a file, is refused."""
        codec, model, pii = self._fitted()
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise ConfigError(f"{path}: is a file; expected a synthesizer directory to write")
        if path.is_dir() and any(path.iterdir()) and not (path / MANIFEST).is_file():
            raise ConfigError(
                f"{path}: is not a synthesizer directory (no {MANIFEST}) and is not empty; "
                "a save replaces only a synthesizer directory"
            )
        manifest = {
            "format": FORMAT,
            "config": asdict(self.config),
            "model": model.config.to_json(),
            "codec": codec.to_json(),
            "pii": pii.to_json(),
            "max_events": self.max_events,
            "length_quantiles": None
            if self.length_quantiles is None
            else self.length_quantiles.tolist(),
            "fit": self.fit_info,
        }
        # Encoded first: a value JSON cannot hold fails before anything is written.
        text = json.dumps(manifest, indent=1, default=_json_default)
        place = path.resolve()  # a symlink's directory is replaced, not the link
        place.parent.mkdir(parents=True, exist_ok=True)
        staging = place.with_name(f".{place.name[:64]}.{secrets.token_hex(4)}.tmp")
        staging.mkdir()  # the umask's mode, as the renamed directory will have
        try:
            save_model(model, str(staging / WEIGHTS))
            # safetensors writes owner-only files; the weights get the manifest's mode.
            os.chmod(staging / WEIGHTS, staging.stat().st_mode & 0o666)
            (staging / MANIFEST).write_text(text)
            ledger.replace_directory(staging, place)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return path

    @classmethod
    def load(cls, path: str | Path, *, device: str | None = None) -> Synthesizer:
        path = Path(path)
        if not (path / MANIFEST).is_file() or not (path / WEIGHTS).is_file():
            raise ConfigError(
                f"{path} is not a synthesizer directory; expected {MANIFEST} and {WEIGHTS} in it"
            )
        try:
            manifest = json.loads((path / MANIFEST).read_text(), object_hook=_json_object)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"{path / MANIFEST} is damaged ({exc}); expected the JSON that fit wrote"
            ) from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            found = manifest.get("format") if isinstance(manifest, dict) else None
            raise ConfigError(f"{path / MANIFEST} has format {found!r}; expected {FORMAT}")
        # NOTE: a manifest that parses may still lack a key or hold a wrong value (edited
        # by hand, or from another version): one error naming the file, not a traceback.
        try:
            config = manifest["config"]
            if device is not None:
                config["device"] = device
            self = cls(SynthesizerConfig.from_json(config))
            self.codec = TableCodec.from_json(manifest["codec"])
            self.model = _build_model(ModelConfig(**manifest["model"]), self.codec)
            self.pii = PiiReplacer(manifest["pii"])
            self.max_events = int(manifest["max_events"])
            quantiles = manifest.get("length_quantiles")
            self.length_quantiles = None if quantiles is None else np.array(quantiles)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            what = f"no {exc.args[0]!r} key" if isinstance(exc, KeyError) else str(exc)
            raise ConfigError(
                f"{path / MANIFEST} is damaged ({what}); expected the manifest that fit wrote"
            ) from None
        try:
            load_model(self.model, str(path / WEIGHTS))
        except Exception as exc:  # safetensors raises its own error types
            raise ConfigError(
                f"{path / WEIGHTS} is damaged ({reason(exc)}); expected the weights that fit "
                "wrote for this manifest"
            ) from None
        self.fit_info = manifest.get("fit", {})
        return self

    @property
    def schema(self) -> Schema:
        return self._fitted()[0].schema

    def _fitted(self) -> tuple[TableCodec, SequenceModel, PiiReplacer]:
        if self.codec is None or self.model is None or self.pii is None:
            raise ConfigError("the synthesizer is not fitted; call fit(df, group_by=...) first")
        return self.codec, self.model, self.pii


def _build_model(config: ModelConfig, codec: TableCodec) -> SequenceModel:
    field, slot = codec.position_fields(config.block_size + 1)
    return SequenceModel(config, torch.from_numpy(field), torch.from_numpy(slot))


def _field_bias(codec: TableCodec) -> torch.Tensor:
    """(n_fields, vocab) additive mask: 0 inside a field's range, -inf outside."""
    fields_mask = np.zeros((len(codec.fields), codec.vocab_size), dtype=bool)
    for i, f in enumerate(codec.fields):
        fields_mask[i, f.offset : f.offset + f.size] = True
    return torch.where(torch.from_numpy(fields_mask), 0.0, float("-inf"))


def _encode_column(values: pd.Series, stats: dict) -> dict[str, np.ndarray]:
    values = values.reset_index(drop=True)
    if stats["kind"] == "datetime":
        return datetime_codec.encode_static(values, stats)
    if stats["kind"] == "numeric":
        return codec_pkg.numeric.encode(values, stats)
    return codec_pkg.categorical.encode(values, stats)


def _join_subjects(
    events: pd.DataFrame, subjects: pd.DataFrame, group_by: str
) -> tuple[pd.DataFrame, list[str]]:
    if group_by not in subjects.columns:
        raise DataError(
            f"subject table has no group column {group_by!r}; columns: {list(subjects.columns)}"
        )
    if group_by not in events.columns:
        raise DataError(
            f"event table has no group column {group_by!r}; columns: {list(events.columns)}"
        )
    dup = subjects[group_by][subjects[group_by].duplicated()]
    if len(dup):
        raise DataError(
            f"subject table repeats key {dup.iloc[0]!r} in {group_by!r}; expected one row per key"
        )
    clash = sorted((set(subjects.columns) & set(events.columns)) - {group_by})
    if clash:
        raise DataError(f"columns {clash} are in both the subject and the event table")
    cols = [c for c in subjects.columns if c != group_by]
    return events.merge(subjects, on=group_by, how="left", validate="many_to_one"), cols


def _with_given_rows(
    out: pd.DataFrame, hist: pd.DataFrame, given: np.ndarray, group_by: str
) -> pd.DataFrame:
    """A continuation's rows with each group's given rows (the first `given[g]` of group g
    in `out`) as the caller gave them, in every column: decoded from tokens they would
    come back as the model sees them (a rare shop as a placeholder, an exact id binned)."""
    sizes = out.groupby(group_by, sort=False).size().to_numpy()
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    mine = np.zeros(len(out), dtype=bool)
    for g, k in enumerate(given):
        mine[starts[g] : starts[g] + k] = True
    # Row i of the result: a row of `hist` where mine[i], else the next sampled row.
    source = np.empty(len(out), dtype=np.int64)
    source[mine] = np.arange(int(mine.sum()))
    source[~mine] = len(hist) + np.arange(int((~mine).sum()))
    kept = hist.reset_index(drop=True)
    sampled = out[~mine].reset_index(drop=True)
    columns = {}
    for name in out.columns:
        if name in kept:
            both = pd.concat([kept[name], sampled[name]], ignore_index=True)
            columns[name] = both.iloc[source].reset_index(drop=True)
        else:
            columns[name] = out[name].reset_index(drop=True)
    return pd.DataFrame(columns)


def _split_tables(df: pd.DataFrame, schema: Schema) -> tuple[pd.DataFrame, pd.DataFrame]:
    subject_cols = [schema.group_by] + (
        schema.subject_columns or [c.name for c in schema.by_role("static", "pii")]
    )
    subjects = df[subject_cols].drop_duplicates(schema.group_by).reset_index(drop=True)
    events = df[[c for c in df.columns if c not in subject_cols[1:]]]
    return subjects, events


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device is {name!r} but CUDA is not available; expected 'cpu' or 'auto'")
    return torch.device(name)


def _rich_progress() -> Callable[[dict], None]:
    """A progress bar of training's steps (`fit`'s progress=True)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn("fit"),
        BarColumn(),
        TextColumn("epoch {task.fields[epoch]} loss {task.fields[loss]:.3f}"),
        TextColumn("val {task.fields[val]}"),
        TimeElapsedColumn(),
        TextColumn("eta {task.fields[eta]:.0f}s"),
        transient=False,
    )
    return _Bar(
        bar,
        lambda info: {
            "total": info["total_steps"],
            "completed": info["step"],
            "epoch": info["epoch"],
            "loss": info["loss"],
            # nan until a validation pass has run (and always without a validation split)
            "val": "-" if math.isnan(info["val_loss"]) else f"{info['val_loss']:.3f}",
            "eta": info["eta_s"],
        },
    )


def _rich_sample_progress() -> Callable[[dict], None]:
    """A progress bar of sampling's event steps (`sample`'s progress=True)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("sample"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("event steps"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    return _Bar(bar, lambda info: {"total": info["total"], "completed": info["step"]})


class _Bar:
    """A rich progress bar driven by reports: started at the first, each shown as the task's
    fields (`fields` maps a report to total, completed and the columns' own fields), and
    stopped by close()."""

    def __init__(self, bar, fields: Callable[[dict], dict]) -> None:
        self.bar, self.fields, self.task = bar, fields, None

    def __call__(self, info: dict) -> None:
        shown = self.fields(info)
        if self.task is None:
            self.bar.start()
            self.task = self.bar.add_task("", **shown)
        else:
            self.bar.update(self.task, **shown)

    def close(self) -> None:
        if self.task is not None:
            self.bar.stop()


# Values a table's cells can hold that JSON cannot, written as {"__type__": T, "value": V}
# and read back as the same type: categories of a column of dates, times or decimals.
def _json_default(o: object) -> object:
    if isinstance(o, np.datetime64):
        o = pd.Timestamp(o)
    elif isinstance(o, np.timedelta64):
        o = pd.Timedelta(o)
    elif isinstance(o, np.generic):
        return o.item()
    # Timestamp before datetime before date: each is a subclass of the next.
    if isinstance(o, pd.Timestamp):
        return {"__type__": "timestamp", "value": o.isoformat()}
    if isinstance(o, datetime.datetime):
        return {"__type__": "datetime", "value": o.isoformat()}
    if isinstance(o, datetime.date):
        return {"__type__": "date", "value": o.isoformat()}
    if isinstance(o, datetime.time):
        return {"__type__": "time", "value": o.isoformat()}
    if isinstance(o, datetime.timedelta):
        return {"__type__": "timedelta", "value": pd.Timedelta(o).value}  # nanoseconds
    if isinstance(o, decimal.Decimal):
        return {"__type__": "decimal", "value": str(o)}
    if isinstance(o, bytes):
        return {"__type__": "bytes", "value": base64.b64encode(o).decode("ascii")}
    raise DataError(
        f"the synthesizer cannot save a value of type {type(o).__name__} ({o!r}); expected "
        "numbers, text, booleans, dates, times, timedeltas, decimals or bytes in the table"
    )


_JSON_TYPES = {
    "timestamp": pd.Timestamp,
    "datetime": datetime.datetime.fromisoformat,
    "date": datetime.date.fromisoformat,
    "time": datetime.time.fromisoformat,
    "timedelta": pd.Timedelta,
    "decimal": decimal.Decimal,
    "bytes": base64.b64decode,
}


def _json_object(d: dict) -> object:
    if d.keys() == {"__type__", "value"} and d["__type__"] in _JSON_TYPES:
        return _JSON_TYPES[d["__type__"]](d["value"])
    return d
