"""Field-masked sampling of token streams, in windows with carried context.

Every position's logits are masked to its field's vocabulary (and blocked codes such as the
rare-category token), so every sampled record decodes to valid values. A group is sampled
token by token with a key/value cache; when the next event no longer fits the window, the
window slides: the static prefix, a window token that says how many events came before, and
the most recent half-window of events are carried into a fresh window. Sampling can be
conditioned on static attributes (forced prefix tokens) or continue a given history.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from cardworld.synthesizer.codec import Encoded, TableCodec
from cardworld.synthesizer.codec.table import END, EVENT
from cardworld.synthesizer.model import SequenceModel


@dataclass
class SampleRequest:
    """What to sample for a batch: forced prefix tokens (-1 = free) and optional histories."""

    forced_prefix: np.ndarray  # (B, S) int64
    history: list[np.ndarray] | None = None  # B arrays of (n_i, W) event tokens, n_i >= 1
    lengths: np.ndarray | None = None  # (B,) events each fresh group gets; None: the model ends it


@torch.no_grad()
def generate(
    model: SequenceModel,
    codec: TableCodec,
    request: SampleRequest,
    *,
    allowed: torch.Tensor,
    max_events: int,
    generator: torch.Generator,
    temperature: float = 1.0,
    on_event: Callable[[], None] | None = None,
) -> Encoded:
    """Sample one batch of groups; returns their prefixes and events (history included).
    `on_event` is called after each event step (one event for every group still going)."""
    device = allowed.device
    model.eval()
    block = model.config.block_size
    S, W = codec.n_static, codec.event_width
    B = request.forced_prefix.shape[0]
    n_window = codec.events_per_window(block)
    carry_max = max(1, n_window // 2)
    field_of_pos = model.field_of_pos.tolist()
    neg = torch.tensor(float("-inf"), device=device)
    end_token = codec.marker_token(END)
    event_token = codec.marker_token(EVENT)

    def pick(logits: torch.Tensor, pos: int, forced: torch.Tensor | None = None) -> torch.Tensor:
        f = field_of_pos[pos]
        logits = torch.where(allowed[f], logits.float() / temperature, neg)  # (B, V)
        tok = torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator)[:, 0]
        if forced is not None:
            tok = torch.where(forced >= 0, forced, tok)
        return tok  # (B,)

    # 1. The static prefix: sampled or forced (conditional sampling), or taken from a history.
    forced = torch.as_tensor(request.forced_prefix, device=device)
    prefix = torch.empty((B, S), dtype=torch.long, device=device)
    prefix[:, 0] = codec.fields[0].offset  # BOS
    cache = model.new_cache(B, device)
    logits = model(prefix[:, :1], 0, cache)
    for p in range(1, S):
        prefix[:, p] = pick(logits[:, -1], p, forced[:, p])
        logits = model(prefix[:, p : p + 1], p, cache)

    # 2. Events: carried history (all sequences carry the same number m, each its own tail).
    if request.history is not None:
        lengths = np.array([len(h) for h in request.history])
        m = int(min(lengths.min(), carry_max))
        window_events = torch.as_tensor(
            np.stack([h[len(h) - m :] for h in request.history]), device=device
        )  # (B, m, W)
        total = torch.as_tensor(lengths, device=device)
    else:
        window_events = torch.zeros((B, 0, W), dtype=torch.long, device=device)
        total = torch.zeros(B, dtype=torch.long, device=device)

    def open_window(events: torch.Tensor) -> tuple[torch.Tensor, int]:
        before = (total - events.size(1)).tolist()
        win = torch.tensor([codec.window_token(b) for b in before], device=device)[:, None]
        ctx = torch.cat([prefix, win, events.reshape(B, -1)], dim=1)  # (B, S + 1 + m * W)
        return model(ctx, 0, cache), ctx.size(1)

    logits, pos = open_window(window_events)
    done = torch.zeros(B, dtype=torch.bool, device=device)
    wanted = None if request.lengths is None else torch.as_tensor(request.lengths, device=device)
    new_rows: list[torch.Tensor] = []  # one (B, W) per event step
    alive_at: list[torch.Tensor] = []
    while True:
        if window_events.size(1) >= n_window:  # the window is full: slide, carrying recent events
            window_events = window_events[:, -carry_max:]
            logits, pos = open_window(window_events)
        marker = pick(logits[:, -1], pos)
        if wanted is not None:  # lengths are given: an event until each group has its own
            marker = torch.where(wanted > len(new_rows), event_token, end_token)
        if len(new_rows) >= max_events:
            marker = torch.full_like(marker, end_token)
        elif not new_rows and request.history is None:
            # Every group of a table has at least one row: a new group cannot end empty.
            marker = torch.full_like(marker, event_token)
        done |= marker == end_token
        if bool(done.all()):
            break
        marker = torch.where(done, torch.full_like(marker, event_token), marker)
        row = [marker]
        logits = model(marker[:, None], pos, cache)
        pos += 1
        for _ in range(1, W):
            tok = pick(logits[:, -1], pos)
            row.append(tok)
            logits = model(tok[:, None], pos, cache)
            pos += 1
        event = torch.stack(row, dim=1)  # (B, W)
        new_rows.append(event)
        alive_at.append(~done)
        window_events = torch.cat([window_events, event[:, None]], dim=1)
        total = total + (~done).long()
        if on_event is not None:
            on_event()

    prefix_np = prefix.cpu().numpy()
    rows = torch.stack(new_rows, dim=1).cpu().numpy() if new_rows else np.zeros((B, 0, W), int)
    alive = torch.stack(alive_at, dim=1).cpu().numpy() if alive_at else np.zeros((B, 0), bool)
    per_group = []
    for b in range(B):
        mine = rows[b][alive[b]]
        if request.history is not None:
            mine = np.concatenate([request.history[b], mine])
        per_group.append(mine.reshape(-1, W))
    starts = np.concatenate([[0], np.cumsum([len(e) for e in per_group])]).astype(np.int64)
    events = np.concatenate(per_group) if per_group else np.zeros((0, W), np.int64)
    return Encoded(prefix_np, events.astype(np.int64), starts)


def concat(parts: list[Encoded]) -> Encoded:
    """Join batches of sampled groups into one."""
    prefix = np.concatenate([p.prefix for p in parts])
    events = np.concatenate([p.events for p in parts])
    lengths = np.concatenate([np.diff(p.starts) for p in parts])
    return Encoded(prefix, events, np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64))
