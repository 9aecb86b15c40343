"""Reference data from packages, and the few corrections made to it."""

from __future__ import annotations

from cardworld.worlds import reference
from cardworld.worlds.load import load_world


def test_mcc_4814_is_telecommunication_not_fax():
    """iso18245's USDA description of 4814 is "Fax services"; ISO 18245 and Visa say
    telecommunication services (calls, of which fax is one kind)."""
    assert reference.mcc_descriptions()[4814] == "Telecommunication Services"


def test_mcc_description_fixes_are_visas_and_cover_used_codes():
    import iso18245

    visa = {int(m.mcc): m.visa_description for m in iso18245.get_all_mccs()}
    descriptions = reference.mcc_descriptions()
    us = load_world("us").tables
    used = set(us["mccs"]["mcc"]) | set(us["goods_mcc"]["mcc"])
    for mcc, text in reference.MCC_DESCRIPTION_FIXES.items():
        assert descriptions[mcc] == text
        assert visa[mcc].startswith(text), mcc
        assert mcc in used, mcc
    for wrong in ("Fax services", "Radio Repair Shops", "Feries", "Price Goods"):
        assert not any(wrong in descriptions[m] for m in used), wrong
