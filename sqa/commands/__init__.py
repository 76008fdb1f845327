"""Subcommand entry points of the ``sqa`` CLI (each module exposes ``main(argv) -> int``)."""
