"""The distribution: every package folder is installed, under cardworld.* only."""

from __future__ import annotations

import importlib
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import cardworld

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_folder_is_listed_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    mapping = {v: k for k, v in config["package-dir"].items()}
    found = set()
    for top, name in mapping.items():
        for init in (ROOT / top).rglob("__init__.py"):
            if ".venv" in init.parts:
                continue
            rel = init.parent.relative_to(ROOT / top).parts
            found.add(".".join((name, *rel)))
    assert found == listed


@pytest.mark.parametrize("name", ["simulator", "worlds", "synthesizer"])
def test_generic_names_are_not_installed_top_level(name):
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(name)


def test_public_api():
    for name in (
        "simulate",
        "load_world",
        "verify",
        "read_table",
        "read_transactions",
        "CardworldError",
    ):
        assert hasattr(cardworld, name) and name in dir(cardworld)  # dir: tab completion
    targets = importlib.import_module("cardworld.targets")
    assert {"TargetDataset", "pad_collate", "compute_table"} <= set(dir(targets))


def test_python_run_in_the_checkout_root_finds_the_subpackages():
    """`python -c "import cardworld; ..."` in the repository's root (as the demo's next
    steps suggest after `pip install . && cardworld demo` there) imports the root's
    cardworld/ folder, whose subpackages lie beside it."""
    code = (
        # As without an editable install, whose finder would map the subpackages anyway.
        "import sys; sys.meta_path[:] = [f for f in sys.meta_path "
        "if 'editable' not in repr(f).lower()]; "
        "import cardworld.simulator.ledger as l, cardworld.worlds.load as w, "
        "cardworld.synthesizer as s; print(l.__file__); print(w.__file__)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    files = [Path(line) for line in done.stdout.split()]
    assert files == [ROOT / "simulator" / "ledger.py", ROOT / "worlds" / "load.py"]
