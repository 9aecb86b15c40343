"""Command functions of the `cardworld` CLI, registered in cardworld/cli.py."""
