"""Windows of token streams and the training loop: AdamW, a validation split, early stopping.

A group's history is cut into overlapping windows; each window repeats the group's static
prefix (the carried context) and a window token that says how far into the history it starts.
The loop is plain: shuffle windows, step, evaluate once per epoch, keep the best weights, stop
when validation loss has not improved for ``patience`` epochs or the time budget is spent.
The budget (``max_minutes``) bounds the training steps: it is checked after every batch, and
a run that spends it mid-epoch ends that epoch there with one validation pass, so a fit
overruns it by a batch and a validation pass at most (building windows and saving are not
counted).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch.nn import functional as F

from cardworld.synthesizer.codec import Encoded, TableCodec
from cardworld.synthesizer.model import SequenceModel

IGNORE = -100


@dataclass
class TrainConfig:
    batch_size: int = 64
    learning_rate: float = 2e-3
    weight_decay: float = 0.1
    max_epochs: int = 100
    patience: int = 5
    max_minutes: float | None = None
    warmup_steps: int = 50
    grad_clip: float = 1.0
    seed: int = 0

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class TrainResult:
    epochs: int
    steps: int
    best_val_loss: float
    train_loss: float
    seconds: float
    history: list[dict]


def make_windows(
    enc: Encoded, codec: TableCodec, block_size: int, groups: np.ndarray | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and targets (N_windows, block_size) int64; targets are IGNORE where not learned."""
    n_ev = codec.events_per_window(block_size)
    stride = max(1, n_ev // 4)
    xs, ys = [], []
    groups = np.arange(enc.n_groups) if groups is None else groups
    end = codec.marker_token(1)
    for g in groups:
        events = enc.group_events(int(g))
        # Windows start all the way to the end, so END is learned at every slot of a window,
        # wherever the sampler's slides happen to leave it.
        for s in range(0, len(events), stride):
            chunk = events[s : s + n_ev].reshape(-1)
            tail = [end] if s + n_ev >= len(events) else []
            seq = np.concatenate([enc.prefix[g], [codec.window_token(s)], chunk, tail])
            x = np.zeros(block_size, dtype=np.int64)
            y = np.full(block_size, IGNORE, dtype=np.int64)
            x[: len(seq) - 1] = seq[:-1]
            y[: len(seq) - 1] = seq[1:]
            # The window token is given, not predicted; in a continuation window the static
            # prefix was already learned from the group's first window.
            y[codec.n_static - 1] = IGNORE
            if s > 0:
                y[: codec.n_static] = IGNORE
            xs.append(x)
            ys.append(y)
    return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))


def masked_loss(
    model: SequenceModel, x: torch.Tensor, y: torch.Tensor, field_bias: torch.Tensor
) -> torch.Tensor:
    """Cross-entropy with each target's logits restricted to its field's vocabulary."""
    logits = model(x)  # (B, T, V)
    T = x.size(1)
    # (T,) field of the token each position predicts; the layout has block_size + 1 positions.
    target_field = model.field_of_pos[1 : T + 1]
    logits = logits.float() + field_bias[target_field]  # (B, T, V)
    return F.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1), ignore_index=IGNORE)


def train(
    model: SequenceModel,
    train_data: tuple[torch.Tensor, torch.Tensor],
    val_data: tuple[torch.Tensor, torch.Tensor] | None,
    *,
    field_bias: torch.Tensor,
    config: TrainConfig,
    device: torch.device,
    on_progress: Callable[[dict], None] | None = None,
) -> TrainResult:
    """Fit ``model`` in place and leave it holding the weights of the best validation epoch.

    The step size follows warmup and cosine decay over the step or time budget, and halves
    (restarting from the best weights) whenever validation loss stalls for a third of
    ``patience`` epochs."""
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    model.to(device)
    field_bias = field_bias.to(device)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": config.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=config.learning_rate,
        betas=(0.9, 0.95),
        fused=device.type == "cuda",
    )
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if device.type == "cuda"
        else torch.autocast("cpu", enabled=False)
    )
    x_all, y_all = train_data
    n = x_all.size(0)
    steps_per_epoch = max(1, math.ceil(n / config.batch_size))
    total_steps = steps_per_epoch * config.max_epochs
    best, best_state, stale = math.inf, None, 0
    lr_scale = 1.0
    history: list[dict] = []
    t0, step, train_loss = time.perf_counter(), 0, math.nan
    budget_s = math.inf if config.max_minutes is None else 60 * config.max_minutes
    val_loss = math.nan  # the latest measured; nan until an epoch ends, or without val_data
    epoch = 0
    for epoch in range(1, config.max_epochs + 1):
        model.train()
        perm = torch.randperm(n, generator=gen)
        running = []
        for i in range(0, n, config.batch_size):
            idx = perm[i : i + config.batch_size]
            x, y = x_all[idx].to(device), y_all[idx].to(device)
            # Decay by steps or by the time budget, whichever is further along.
            done = max(step / total_steps, (time.perf_counter() - t0) / budget_s)
            lr = _learning_rate(step, config, done) * lr_scale
            for group in opt.param_groups:
                group["lr"] = lr
            with autocast:
                loss = masked_loss(model, x, y, field_bias)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            opt.step()
            step += 1
            running.append(loss.item())
            elapsed = time.perf_counter() - t0
            if on_progress is not None:
                eta = min(elapsed / step * (total_steps - step), max(0.0, budget_s - elapsed))
                on_progress(
                    {
                        "epoch": epoch,
                        "step": step,
                        "total_steps": total_steps,
                        "loss": running[-1],
                        "val_loss": val_loss,
                        "eta_s": eta,
                    }
                )
            if elapsed > budget_s:
                break
        train_loss = float(np.mean(running))
        val_loss = evaluate_loss(model, val_data, field_bias, device, config.batch_size)
        score = val_loss if val_data is not None else train_loss
        history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss})
        if score < best - 1e-4:
            best, stale = score, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            stale += 1
            # A plateau: go on from the best weights at half the step size before giving up;
            # small tables overfit within a few epochs at the peak rate.
            if stale % max(1, config.patience // 3) == 0 and best_state is not None:
                lr_scale *= 0.5
                model.load_state_dict(best_state)
        if stale >= config.patience or time.perf_counter() - t0 > budget_s:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return TrainResult(epoch, step, best, train_loss, time.perf_counter() - t0, history)


@torch.no_grad()
def evaluate_loss(
    model: SequenceModel,
    data: tuple[torch.Tensor, torch.Tensor] | None,
    field_bias: torch.Tensor,
    device: torch.device,
    batch_size: int,
) -> float:
    if data is None:
        return math.nan
    model.eval()
    x_all, y_all = data
    total, count = 0.0, 0
    for i in range(0, x_all.size(0), batch_size):
        x, y = x_all[i : i + batch_size].to(device), y_all[i : i + batch_size].to(device)
        with (
            torch.autocast("cuda", dtype=torch.bfloat16)
            if device.type == "cuda"
            else torch.autocast("cpu", enabled=False)
        ):
            loss = masked_loss(model, x, y, field_bias)
        k = int((y != IGNORE).sum())
        total += loss.item() * k
        count += k
    return total / max(count, 1)


def _learning_rate(step: int, config: TrainConfig, done: float) -> float:
    """Linear warmup, then cosine decay to a tenth of the peak as the budget is spent."""
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    progress = min(1.0, done)
    return config.learning_rate * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
