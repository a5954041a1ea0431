"""The `duru` command line; thin, every command calls one library function."""

from duru.cli.app import app, main

__all__ = ["app", "main"]
