"""Worlds as data: TOML parameters and CSV tables, loaded into validated objects."""
