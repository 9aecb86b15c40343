"""Synthesizer benchmark: cardworld's sequence model against SDV's PARSynthesizer.

Workloads (accounts split 90/10 into training and holdout):

- ``nemo_4k``: a NeMo-shaped flat table (about 50 accounts, 4,000 rows: acct_id, cardholder,
  state, txn_index, timestamp, merchant_cat, merchant, txn_amount) generated below with known
  behaviour (category preferences per account, monthly subscriptions, hour-of-day and amount
  profiles per category);
- ``tiny_ledger``: the same flat shape exported from a ``tiny``-world cardworld ledger, when
  ``cardworld.simulate`` runs here;
- ``nemo_67k`` (GPU only): 760 accounts of about 88 transactions, the NeMo tutorial's size.

For each: cardworld fit time, sampling rows/s, the evaluation's figures (against the holdout),
GPU memory on a GPU; and SDV's PARSynthesizer on ``nemo_4k`` in the same run, when SDV imports
here or ``CARDWORLD_SDV_PYTHON`` names a Python that has it (SDV needs pandas < 3, so it
usually lives in a separate environment). Prints a table and writes
``benchmarks/results/synthesizer.json``.

    python benchmarks/synthesizer.py [--quick] [--no-sdv] [--sdv-epochs N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from machine import machine as shared_machine  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "synthesizer.json"

# Merchants per category, with (log-mean, log-sd) of amounts, and hour-of-day peaks.
CATEGORIES = {
    "dining": (["McDonald's", "Starbucks", "Chipotle", "Olive Garden"], (2.9, 0.6), [8, 12, 19]),
    "grocery": (["Whole Foods", "Kroger", "Safeway", "Trader Joe's"], (4.0, 0.5), [11, 17, 18]),
    "retail": (["Target", "Best Buy", "Walmart", "Home Depot"], (4.2, 0.9), [13, 16, 20]),
    "e-commerce": (["Amazon", "eBay", "Etsy"], (3.7, 0.8), [10, 21, 22]),
    "gas": (["Shell", "Chevron", "Exxon"], (3.7, 0.3), [7, 8, 17]),
    "travel": (["Delta Air Lines", "Marriott", "Uber"], (5.0, 1.0), [6, 9, 15]),
    "healthcare": (["Walgreens", "CVS"], (3.3, 0.8), [10, 14, 18]),
    "entertainment": (["AMC Theatres", "Ticketmaster"], (3.6, 0.6), [19, 20, 21]),
}
SUBSCRIPTIONS = {"Netflix": 15.49, "Spotify": 11.99, "Hulu": 7.99, "Disney+": 13.99}
STATES = ["CA", "TX", "NY", "FL", "IL", "PA", "OH", "GA", "WA", "NC"]


def nemo_table(n_accounts: int, mean_txns: int, seed: int = 0) -> pd.DataFrame:
    """A plausible account ledger whose patterns are known by construction."""
    from faker import Faker

    rng = np.random.default_rng(seed)
    fake = Faker()
    fake.seed_instance(seed)
    cats = list(CATEGORIES)
    rows = []
    for _ in range(n_accounts):
        acct = f"ACCT-{rng.integers(0, 16**8):08X}"
        holder, state = fake.name(), str(rng.choice(STATES, p=_state_weights()))
        prefs = rng.dirichlet(np.full(len(cats), 0.8))
        n = max(5, int(rng.normal(mean_txns, mean_txns * 0.25)))
        rate = n / 90.0  # about three months of activity
        subs = rng.choice(list(SUBSCRIPTIONS), size=int(rng.integers(0, 3)), replace=False)
        sub_day = {s: int(rng.integers(1, 28)) for s in subs}
        t = pd.Timestamp("2025-01-01") + pd.Timedelta(hours=float(rng.uniform(0, 24)))
        events = []
        while len(events) < n:
            t = t + pd.Timedelta(days=float(rng.exponential(1.0 / rate)))
            c = cats[int(rng.choice(len(cats), p=prefs))]
            merchants, (mu, sd), peaks = CATEGORIES[c]
            hour = int(np.clip(rng.normal(rng.choice(peaks), 1.2), 0, 23))
            when = t.normalize() + pd.Timedelta(
                hours=hour, minutes=int(rng.integers(0, 60)), seconds=int(rng.integers(0, 60))
            )
            events.append(
                (when, c, str(rng.choice(merchants)), round(float(rng.lognormal(mu, sd)), 2))
            )
        for s, day in sub_day.items():
            for month in (1, 2, 3):
                when = pd.Timestamp(2025, month, day) + pd.Timedelta(
                    hours=int(rng.integers(0, 4)), minutes=int(rng.integers(0, 60))
                )
                events.append((when, "subscription", s, SUBSCRIPTIONS[s]))
        events.sort(key=lambda e: e[0])
        for i, (when, c, m, amount) in enumerate(events):
            rows.append((acct, holder, state, i + 1, when, c, m, amount))
    return pd.DataFrame(
        rows,
        columns=[
            "acct_id",
            "cardholder",
            "state",
            "txn_index",
            "timestamp",
            "merchant_cat",
            "merchant",
            "txn_amount",
        ],
    )


def _state_weights() -> np.ndarray:
    w = np.array([12, 9, 6, 7, 4, 4, 3.5, 3.3, 2.4, 3.2])
    return w / w.sum()


def ledger_table(
    n_consumers: int = 60, max_txns: int = 80, seed: int | None = None
) -> pd.DataFrame:
    """The NeMo-shaped flat export of a tiny-world ledger (first ``max_txns`` per consumer);
    `seed` overrides the world's, for an independent sample of other consumers."""
    import cardworld

    with tempfile.TemporaryDirectory() as tmp:
        cardworld.simulate(
            "tiny", Path(tmp) / "ledger", consumers=n_consumers, seed=seed, workers=1
        )
        root = Path(tmp) / "ledger"
        tx = pd.read_parquet(root / "transactions")
        consumers = pd.read_parquet(root / "consumers.parquet")
        merchants = pd.read_parquet(root / "merchants.parquet")
    tx = tx.sort_values(["consumer_id", "timestamp"], kind="mergesort")
    tx = tx.groupby("consumer_id").head(max_txns)
    consumers["cardholder"] = consumers["first_name"] + " " + consumers["last_name"]
    df = tx.merge(consumers[["consumer_id", "cardholder", "state"]], on="consumer_id", how="left")
    if "name" in merchants.columns:
        df = df.merge(
            merchants[["merchant_id", "name"]].rename(columns={"name": "merchant"}),
            on="merchant_id",
            how="left",
        )
    else:
        df["merchant"] = df["merchant_id"].astype(str)
    df["txn_index"] = df.groupby("consumer_id").cumcount() + 1
    return pd.DataFrame(
        {
            "acct_id": "ACCT-" + df["consumer_id"].astype(str).str.zfill(8),
            "cardholder": df["cardholder"],
            "state": df["state"],
            "txn_index": df["txn_index"],
            "timestamp": pd.to_datetime(df["timestamp"]).dt.tz_localize(None)
            if getattr(pd.to_datetime(df["timestamp"]).dt, "tz", None) is not None
            else pd.to_datetime(df["timestamp"]),
            "merchant_cat": df["category"],
            "merchant": df["merchant"],
            "txn_amount": df["amount"],
        }
    ).reset_index(drop=True)


def split(df: pd.DataFrame, holdout: float = 0.1, seed: int = 0):
    keys = df["acct_id"].unique()
    rng = np.random.default_rng(seed)
    hold = set(rng.choice(keys, max(1, int(round(holdout * len(keys)))), replace=False))
    mask = df["acct_id"].isin(hold)
    return df[~mask].reset_index(drop=True), df[mask].reset_index(drop=True)


def cardworld_config(rows: int, gpu: bool, quick: bool) -> dict:
    """The model for a table of `rows` rows: the NeMo tutorial's size gets a larger one on a GPU;
    smaller tables get the same model on either device, so that their figures compare."""
    if gpu and rows > 20_000:
        return dict(
            n_layer=4,
            n_head=8,
            n_embd=256,
            block_size=512,
            batch_size=128,
            learning_rate=1.5e-3,
            max_epochs=300,
            patience=10,
            dropout=0.1,
            max_minutes=1.75,
        )
    return dict(
        n_layer=2,
        n_head=4,
        n_embd=64,
        block_size=256,
        batch_size=32,
        learning_rate=3e-3,
        max_epochs=8 if quick else 200,
        patience=15,
        dropout=0.1,
        max_minutes=1 if quick else 4,
    )


def run_cardworld(train: pd.DataFrame, hold: pd.DataFrame, gpu: bool, quick: bool) -> dict:
    import torch

    from cardworld.synthesizer import Synthesizer
    from cardworld.synthesizer.evaluate import evaluate_tables

    cfg = cardworld_config(len(train), gpu, quick)
    if gpu:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    synth = Synthesizer(**cfg, seed=0).fit(train, group_by="acct_id", order_by="txn_index")
    fit_s = time.perf_counter() - t0
    n_groups = train["acct_id"].nunique()
    t0 = time.perf_counter()
    out = synth.sample(n_groups, seed=1)
    sample_s = time.perf_counter() - t0
    result = {
        "config": cfg,
        "fit_s": round(fit_s, 2),
        "epochs": synth.fit_info["epochs"],
        "parameters": synth.fit_info["parameters"],
        "best_val_loss": round(synth.fit_info["best_val_loss"], 4),
        "sample_s": round(sample_s, 2),
        "sampled_rows": len(out),
        "sample_rows_per_s": round(len(out) / sample_s, 1),
        "device": synth.fit_info["device"],
    }
    if gpu:
        result["gpu_peak_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
    result["evaluation"] = summary(
        evaluate_tables(train, out, group_by="acct_id", order_by="txn_index", holdout=hold)
    )
    return result


def sdv_python() -> str | None:
    try:
        import sdv  # noqa: F401

        return sys.executable
    except ImportError:
        return os.environ.get("CARDWORLD_SDV_PYTHON")


def run_sdv(train: pd.DataFrame, hold: pd.DataFrame, python: str, epochs: int) -> dict:
    """PARSynthesizer in a subprocess (its own environment); times measured inside it."""
    from cardworld.synthesizer.evaluate import evaluate_tables

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "train.parquet", Path(tmp) / "synth.parquet"
        train.to_parquet(src)
        cmd = [python, __file__, "--sdv-worker", str(src), str(dst), str(epochs)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"}
        timing = json.loads(proc.stdout.strip().splitlines()[-1])
        out = pd.read_parquet(dst)
    timing["sample_rows_per_s"] = round(len(out) / timing["sample_s"], 1)
    timing["sampled_rows"] = len(out)
    timing["evaluation"] = summary(
        evaluate_tables(train, out, group_by="acct_id", order_by="txn_index", holdout=hold)
    )
    return timing


def sdv_worker(src: str, dst: str, epochs: int) -> None:
    """Runs inside SDV's environment: fit PARSynthesizer, sample, print timings as JSON."""
    import warnings

    import sdv
    from sdv.metadata import Metadata
    from sdv.sequential import PARSynthesizer

    warnings.filterwarnings("ignore")
    df = pd.read_parquet(src)
    md = Metadata.detect_from_dataframes({"tx": df})
    md.update_column(column_name="acct_id", sdtype="id", table_name="tx")
    # Fair to SDV: let it fake the names instead of copying them.
    md.update_column(column_name="cardholder", sdtype="name", pii=True, table_name="tx")
    md.update_column(column_name="state", sdtype="categorical", table_name="tx")
    md.set_sequence_key("acct_id", table_name="tx")
    md.set_sequence_index("timestamp", table_name="tx")
    synth = PARSynthesizer(
        md, context_columns=["cardholder", "state"], epochs=epochs, verbose=False, cuda=False
    )
    t0 = time.perf_counter()
    synth.fit({"tx": df})
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = synth.sample_sequences(df["acct_id"].nunique())
    out = out["tx"] if isinstance(out, dict) else out
    sample_s = time.perf_counter() - t0
    out.to_parquet(dst)
    print(
        json.dumps(
            {
                "fit_s": round(fit_s, 2),
                "sample_s": round(sample_s, 2),
                "epochs": epochs,
                "sdv": sdv.__version__,
            }
        )
    )


def summary(f: dict) -> dict:
    p = f["privacy"]
    amount = f.get("amount", {})
    return {
        "quality_score": f["quality_score"],
        "privacy_score": p["privacy_score"],
        "discriminator_auc": f["discriminator"]["auc"],
        "discriminator_top_features": f["discriminator"].get("top_features"),
        "exact_row_overlap": p["exact_row_overlap"],
        "identifier_overlap": p["identifier_overlap"],
        "dcr_median_synthetic": p["dcr_synthetic"]["median"],
        "dcr_median_holdout": p.get("dcr_holdout", {}).get("median"),
        "dcr_share_below_holdout_p5": p.get("dcr_share_below_holdout_p5"),
        "category_mix_tvd": f.get("category_mix", {}).get("tvd"),
        "category_transitions_tvd": f.get("category_transitions", {}).get("tvd"),
        "hour_by_category_tvd": f.get("hour_by_category", {}).get("tvd"),
        "amount_ks": amount.get("ks"),
        "median_by_category_rel_err": amount.get("median_by_category", {}).get(
            "mean_relative_error"
        ),
        "events_per_group_ks": f["events_per_group"]["ks"],
        "events_per_group_median": [
            f["events_per_group"]["real"]["median"],
            f["events_per_group"]["synthetic"]["median"],
        ],
        "gaps_ks": f.get("gaps_hours", {}).get("ks"),
        "span_ks": f.get("group_span", {}).get("ks"),
        "events_span_correlation": f.get("group_span", {}).get("events_correlation"),
        "columns_quality": {k: round(v["quality"], 4) for k, v in f["columns"].items()},
    }


def machine() -> dict:
    """The shared machine record, plus torch's threads and the GPU's memory."""
    import torch

    info = shared_machine()
    info["torch_threads"] = torch.get_num_threads()
    if torch.cuda.is_available():
        info["gpu_memory_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
    return info


def print_table(results: dict) -> None:
    cols = [("fit s", "fit_s"), ("rows/s", "sample_rows_per_s"), ("rows", "sampled_rows")]
    ev = [
        ("quality", "quality_score"),
        ("privacy", "privacy_score"),
        ("disc AUC", "discriminator_auc"),
        ("overlap", "exact_row_overlap"),
        ("trans TVD", "category_transitions_tvd"),
        ("hourxcat TVD", "hour_by_category_tvd"),
        ("amount KS", "amount_ks"),
        ("med/cat err", "median_by_category_rel_err"),
        ("len KS", "events_per_group_ks"),
        ("gap KS", "gaps_ks"),
        ("span KS", "span_ks"),
        ("DCR syn/hold", None),
    ]
    head = ["workload", "method"] + [c for c, _ in cols] + [c for c, _ in ev] + ["GPU GiB"]
    lines = [head]
    for workload, methods in results["workloads"].items():
        for method, r in methods.items():
            if method == "data":
                continue
            if not isinstance(r, dict) or "error" in r or "skipped" in r:
                lines.append([workload, method, str(r.get("error") or r.get("skipped"))[:60]])
                continue
            e = r["evaluation"]
            row = [workload, method] + [_fmt(r.get(k)) for _, k in cols]
            for _, k in ev:
                if k is None:
                    row.append(f"{_fmt(e['dcr_median_synthetic'])}/{_fmt(e['dcr_median_holdout'])}")
                else:
                    row.append(_fmt(e.get(k)))
            row.append(_fmt(r.get("gpu_peak_memory_gib")))
            lines.append(row)
    widths = [max(len(str(r[i])) for r in lines if i < len(r)) for i in range(len(head))]
    for r in lines:
        print("  ".join(str(v).ljust(widths[i]) for i, v in enumerate(r)))


def _fmt(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 100 else f"{v:.0f}"
    return str(v)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few epochs: checks the script")
    parser.add_argument("--no-sdv", action="store_true")
    parser.add_argument("--no-ledger", action="store_true")
    parser.add_argument("--sdv-epochs", type=int, default=128, help="PAR's default is 128")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--sdv-worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sdv_worker:
        sdv_worker(args.sdv_worker[0], args.sdv_worker[1], int(args.sdv_worker[2]))
        return
    import torch

    gpu = torch.cuda.is_available()
    if gpu:
        torch.backends.cuda.matmul.allow_tf32 = True
    results: dict = {"machine": machine(), "workloads": {}}
    workloads = {"nemo_4k": lambda: nemo_table(50, 80, seed=0)}
    # A fresh draw from the same generator: the figures a perfect synthesizer would get.
    references = {
        "nemo_4k": lambda: nemo_table(50, 80, seed=100),
        "nemo_67k": lambda: nemo_table(760, 88, seed=101),
        # Another seed's consumers, their keys renamed so none is taken for a training one.
        "tiny_ledger": lambda: ledger_table(seed=101).assign(
            acct_id=lambda d: "REF-" + d["acct_id"]
        ),
    }
    if not args.no_ledger:
        workloads["tiny_ledger"] = ledger_table
    if gpu:
        workloads["nemo_67k"] = lambda: nemo_table(760, 88, seed=1)
    for name, make in workloads.items():
        entry: dict = {}
        try:
            df = make()
        except Exception as exc:  # the simulator may not run here yet: report, go on
            results["workloads"][name] = {"cardworld": {"skipped": f"{type(exc).__name__}: {exc}"}}
            continue
        train, hold = split(df)
        entry["data"] = {
            "rows": len(df),
            "accounts": int(df["acct_id"].nunique()),
            "train_rows": len(train),
            "holdout_rows": len(hold),
        }
        print(f"{name}: {len(df)} rows, {df['acct_id'].nunique()} accounts", flush=True)
        entry["cardworld"] = run_cardworld(train, hold, gpu, args.quick)
        if name in references:
            from cardworld.synthesizer.evaluate import evaluate_tables

            fresh = split(references[name]())[0]
            entry["reference_fresh_real"] = {
                "note": "an independent real sample of the same size: the ceiling",
                "sampled_rows": len(fresh),
                "evaluation": summary(
                    evaluate_tables(
                        train, fresh, group_by="acct_id", order_by="txn_index", holdout=hold
                    )
                ),
            }
        if name == "nemo_4k" and not args.no_sdv:
            python = sdv_python()
            entry["sdv_par"] = (
                run_sdv(train, hold, python, 4 if args.quick else args.sdv_epochs)
                if python
                else {"skipped": "SDV not importable; set CARDWORLD_SDV_PYTHON"}
            )
        results["workloads"][name] = entry
        # Written after every workload, so a run cut short still leaves its figures.
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1, default=str))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1, default=str))
    print_table(results)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
