"""Reading a ledger: the part files its manifest lists, checked against the ledger's column
contract, page checksums verified; a damaged or wrong file is one LedgerError naming it."""

from __future__ import annotations

import shutil
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import cardworld
from cardworld.errors import LedgerError
from cardworld.simulator import ledger
from cardworld.simulator.export import export
from cardworld.simulator.report_figures import compute_figures
from cardworld.simulator.run import simulate
from cardworld.simulator.targets.compute import compute_ledger
from cardworld.simulator.targets.spec import Target
from cardworld.synthesizer.tables import read_table as synthesizer_input

FIRST = "transactions/part-00000.parquet"


@pytest.fixture(scope="module")
def small_ledger(tmp_path_factory):
    """A small ledger of the tiny world (two part files), simulated once for the module."""
    tmp = tmp_path_factory.mktemp("small")
    world = tmp / "small.toml"
    world.write_text(
        'extends = "tiny"\nname = "small"\ndescription = "two part files"\n'
        "[simulation]\nconsumers = 40\nrows_per_file = 5000\n"
    )
    out = tmp / "ledger"
    simulate(world, out, workers=1)
    assert len(list((out / "transactions").glob("*.parquet"))) >= 2
    return out


@pytest.fixture
def copy(small_ledger, tmp_path):
    """A copy of the small ledger, to damage."""
    target = tmp_path / "ledger"
    shutil.copytree(small_ledger, target)
    return target


def _readers(ledger_dir, tmp_path):
    """Every reader of a ledger's transactions, by name."""
    return {
        "export": lambda: export(ledger_dir, tmp_path / "out.csv"),
        "report": lambda: compute_figures(ledger_dir),
        "read_transactions": lambda: cardworld.read_transactions(ledger_dir),
        "targets": lambda: compute_ledger(ledger_dir, [Target("day", "sum", "day")]),
        "synthesizer": lambda: synthesizer_input(ledger_dir),
    }


def _rewrite(path, change) -> None:
    table = pq.read_table(path)
    pq.write_table(change(table), path)


@pytest.mark.parametrize("reader", ["export", "report", "read_transactions"])
def test_a_missing_column_names_the_file_and_the_column(copy, tmp_path, reader):
    _rewrite(copy / FIRST, lambda t: t.drop_columns(["amount"]))
    with pytest.raises(LedgerError) as error:
        _readers(copy, tmp_path)[reader]()
    assert str(error.value) == (
        f"{copy / FIRST}: column 'amount': not found; expected a column of float64 "
        "(or another numeric type)"
    )
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize("reader", ["export", "report", "read_transactions"])
def test_a_column_of_another_kind_names_the_type_found_and_expected(copy, tmp_path, reader):
    def as_text(table: pa.Table) -> pa.Table:
        i = table.schema.get_field_index("amount")
        return table.set_column(i, "amount", table["amount"].cast(pa.string()))

    _rewrite(copy / FIRST, as_text)
    with pytest.raises(LedgerError) as error:
        _readers(copy, tmp_path)[reader]()
    assert str(error.value) == (
        f"{copy / FIRST}: column 'amount': type string; expected float64 (or another numeric type)"
    )


def test_columns_of_another_type_of_the_same_kind_are_read(copy, tmp_path):
    def widened(table: pa.Table) -> pa.Table:
        for name, kind in (("mcc", pa.int64()), ("category", pa.string())):
            i = table.schema.get_field_index(name)
            table = table.set_column(i, name, table[name].cast(kind))
        return table

    for part in (copy / "transactions").glob("*.parquet"):
        _rewrite(part, widened)
    assert export(copy, tmp_path / "out.csv") == cardworld.read_transactions(copy).shape[0]


def test_an_entity_table_of_the_wrong_shape_names_the_file(copy, tmp_path):
    _rewrite(copy / "consumers.parquet", lambda t: t.drop_columns(["first_name"]))
    with pytest.raises(LedgerError, match=r"consumers.parquet: column 'first_name': not found"):
        export(copy, tmp_path / "out.csv")
    with pytest.raises(LedgerError, match=r"consumers.parquet: column 'first_name': not found"):
        ledger.read_table(copy, "consumers")
    _rewrite(copy / "merchants.parquet", lambda t: t.drop_columns(["lat"]))
    with pytest.raises(LedgerError, match=r"merchants.parquet: column 'lat': not found"):
        compute_figures(copy)


@pytest.mark.parametrize("reader", ["export", "report"])
def test_a_truncated_table_is_named(copy, tmp_path, reader):
    data = (copy / "cards.parquet").read_bytes()
    (copy / "cards.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(LedgerError) as error:
        _readers(copy, tmp_path)[reader]()
    message = str(error.value)
    assert message.startswith(f"{copy / 'cards.parquet'}: cannot be read as Parquet (")
    assert f"`cardworld verify {copy}`" in message and "\n" not in message


def _damage_silently(path) -> None:
    """Flip a byte of the file's timestamps (every reader reads them) where a reader that
    does not verify checksums reads other times without an error (zstd catches most flips)."""
    original = path.read_bytes()
    expected = pq.read_table(path)
    metadata = pq.ParquetFile(path).metadata
    column = metadata.row_group(0).column(metadata.schema.names.index("timestamp"))
    for at in range(column.data_page_offset + 40, column.data_page_offset + 4000):
        data = bytearray(original)
        data[at] ^= 0x01
        path.write_bytes(bytes(data))
        try:
            if not pq.read_table(path).equals(expected):
                return
        except (pa.ArrowException, OSError):
            pass
    raise AssertionError(f"{path}: no silent damage found")


@pytest.mark.parametrize(
    "reader", ["export", "report", "read_transactions", "targets", "synthesizer"]
)
def test_a_damaged_page_fails_its_checksum_and_names_the_file(copy, tmp_path, reader):
    _damage_silently(copy / FIRST)
    with pytest.raises(LedgerError) as error:
        _readers(copy, tmp_path)[reader]()
    message = str(error.value)
    assert message.startswith(f"{copy / FIRST}: cannot be read as Parquet (")
    assert f"`cardworld verify {copy}`" in message
    assert not (tmp_path / "out.csv").exists()


def test_every_parquet_file_carries_page_checksums(small_ledger, tmp_path):
    for path in small_ledger.rglob("*.parquet"):
        column = pq.ParquetFile(path).metadata.row_group(0).column(0)
        start = column.dictionary_page_offset if column.has_dictionary_page else None
        end = (start or column.data_page_offset) + column.total_compressed_size
        data = bytearray(path.read_bytes())
        data[end - 2] ^= 0xFF  # in the column chunk's last page
        broken = tmp_path / path.name
        broken.write_bytes(bytes(data))
        with pytest.raises(OSError, match="CRC checksum verification failed"):
            pq.read_table(broken, page_checksum_verification=True)


def test_readers_read_the_part_files_the_manifest_lists(copy, tmp_path):
    rows = cardworld.read_transactions(copy).shape[0]
    shutil.copy(copy / FIRST, copy / "transactions" / "part-99999.parquet")  # not listed
    assert cardworld.read_transactions(copy).shape[0] == rows
    assert export(copy, tmp_path / "out.csv") == rows
    assert len(compute_ledger(copy, [Target("day", "sum", "day")])) == rows
    (copy / ledger.MANIFEST).unlink()  # without a manifest: every part file
    doubled = rows + pq.read_metadata(copy / FIRST).num_rows
    assert cardworld.read_transactions(copy).shape[0] == doubled


@pytest.mark.parametrize("reader", ["export", "read_transactions", "targets"])
def test_a_listed_part_file_that_is_missing_is_named(copy, tmp_path, reader):
    (copy / FIRST).unlink()
    with pytest.raises(LedgerError) as error:
        _readers(copy, tmp_path)[reader]()
    assert str(error.value).startswith(f"{copy / FIRST}: missing, though the manifest lists it")


def test_a_ledger_without_manifest_or_transactions_is_refused(tmp_path):
    with pytest.raises(LedgerError, match="not a cardworld ledger"):
        ledger.transactions(tmp_path)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("foo://x/led", r"foo://x/led: fsspec cannot open foo:// here \(Protocol not known: foo\)"),
        ("s3://b/x", r"s3://b/x: fsspec cannot open s3:// here \(Install s3fs to access S3\)"),
    ],
)
def test_a_url_whose_filesystem_is_missing_is_one_error(monkeypatch, url, message):
    monkeypatch.setitem(sys.modules, "s3fs", None)  # as where s3fs is not installed
    with pytest.raises(LedgerError, match=message) as error:
        ledger.storage(url, flag="--out")
    assert str(error.value).startswith(f"--out {url}: ")
    assert str(error.value).endswith("expected a local path or a URL whose filesystem is installed")
    with pytest.raises(LedgerError, match=message):
        cardworld.verify(url)
