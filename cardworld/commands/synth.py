"""`cardworld synth fit` and `cardworld synth sample`: thin wrappers over Synthesizer."""

from __future__ import annotations

import hashlib
from pathlib import Path
from types import ModuleType
from typing import Annotated

import typer

from cardworld.commands.report_dir import check_out_dir
from cardworld.errors import ConfigError

synth_app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Learn a grouped, ordered table (or a ledger) and sample new groups.",
)


@synth_app.command("fit")
def fit(
    data: Annotated[Path, typer.Argument(help="CSV/Parquet file or a cardworld ledger directory")],
    out: Annotated[Path, typer.Option("--out", help="model directory to write")],
    group_by: Annotated[
        str | None, typer.Option("--group-by", help="group column (ledger: consumer_id)")
    ] = None,
    order_by: Annotated[
        str | None, typer.Option("--order-by", help="order column (ledger: timestamp)")
    ] = None,
    role: Annotated[
        list[str] | None,
        typer.Option("--role", help="COLUMN=ROLE or COLUMN=KIND override, repeatable"),
    ] = None,
    epochs: Annotated[
        int | None, typer.Option(min=1, help="most training epochs (default 100)")
    ] = None,
    max_minutes: Annotated[
        float | None,
        typer.Option(
            min=0.01,
            help="training time budget, minutes (the training steps; reading the table and building its windows come on top)",
        ),
    ] = None,
    layers: Annotated[int | None, typer.Option(min=1, help="transformer layers")] = None,
    width: Annotated[int | None, typer.Option(min=1, help="embedding width")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda")] = "auto",
    seed: Annotated[int, typer.Option(min=0, help="training seed")] = 0,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="replace the model in --out, once saved")
    ] = False,
) -> None:
    """Fit a synthesizer on DATA and save it to --out."""
    from cardworld.synthesizer.tables import read_table

    synthesizer = _synthesizer_module()
    # Found now, not after the training; a model directory is all --overwrite replaces.
    check_out_dir(
        out,
        overwrite=overwrite,
        inputs=[data],
        marker=synthesizer.MANIFEST,
        what="synthesizer model",
    )
    table = read_table(data)
    group_by = group_by or table.group_by
    if group_by is None:
        raise ConfigError(
            f"--group-by is required for {data}; columns: {list(table.events.columns)}"
        )
    overrides: dict = {"device": device, "seed": seed}
    for key, value in (
        ("max_epochs", epochs),
        ("max_minutes", max_minutes),
        ("n_layer", layers),
        ("n_embd", width),
    ):
        if value is not None:
            overrides[key] = value
    synth = synthesizer.Synthesizer(**overrides).fit(
        table.events,
        group_by=group_by,
        order_by=order_by or table.order_by,
        roles=_parse_roles(role or []),
        subjects=table.subjects,
        progress=True,
    )
    # `synth sample` refuses to write onto the training input; a hash keeps the path private.
    synth.fit_info["input_sha256"] = _path_hash(data)
    synth.save(out)
    info = synth.fit_info
    loss = (
        f"best validation loss {info['best_val_loss']:.3f}"
        if info["val_groups"]
        else f"train loss {info['train_loss']:.3f}, no validation split under 10 groups"
    )
    typer.echo(
        f"fitted {info['groups']} groups, {info['rows']} rows in {info['seconds']:.1f}s on "
        f"{info['device']} ({loss}); saved to {out}"
    )


@synth_app.command("sample")
def sample(
    model_dir: Annotated[Path, typer.Argument(help="directory written by `synth fit`")],
    groups: Annotated[int, typer.Option("--groups", min=1, help="number of groups to sample")],
    out: Annotated[Path, typer.Option("--out", help="CSV or Parquet file to write")],
    seed: Annotated[int, typer.Option(min=0, help="sampling seed")] = 0,
    temperature: Annotated[float, typer.Option(help="softmax temperature")] = 1.0,
    device: Annotated[str | None, typer.Option(help="auto, cpu or cuda")] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="replace the file at --out, once written")
    ] = False,
) -> None:
    """Sample --groups new groups from a fitted synthesizer and write them to --out."""
    from cardworld.synthesizer.tables import check_output_suffix, write_table

    synthesizer = _synthesizer_module()
    if out.is_dir():
        raise ConfigError(f"--out {out}: is a directory; expected a CSV or Parquet file to write")
    check_output_suffix(out)
    synth = synthesizer.Synthesizer.load(model_dir, device=device)
    place = out.resolve()
    if any(_path_hash(p) == synth.fit_info.get("input_sha256") for p in [place, *place.parents]):
        raise ConfigError(
            f"--out {out}: is the table this model was trained on (or lies inside it); "
            "choose another --out"
        )
    if out.exists() and not overwrite:
        raise ConfigError(f"--out {out}: already exists; choose another --out or pass --overwrite")
    df = synth.sample(groups, seed=seed, temperature=temperature, progress=True)
    write_table(df, out)
    typer.echo(f"sampled {groups} groups, {len(df)} rows to {out}")


def _synthesizer_module() -> ModuleType:
    """cardworld.synthesizer.synthesizer; a clear error where the `synth` extra is missing."""
    try:
        from cardworld.synthesizer import synthesizer
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] not in ("torch", "safetensors"):
            raise
        raise ConfigError(
            f"cardworld synth needs PyTorch and safetensors ({exc.name} is not installed): "
            "pip install 'cardworld[synth]'"
        ) from None
    return synthesizer


def _path_hash(path: Path) -> str:
    return hashlib.sha256(str(path.resolve()).encode()).hexdigest()


def _parse_roles(items: list[str]) -> dict[str, str]:
    roles = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise ConfigError(f"--role {item!r} is not COLUMN=ROLE; e.g. --role cardholder=pii")
        roles[name] = value
    return roles
