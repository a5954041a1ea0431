"""`python -m duru.cli`: the same as the `duru` command."""

from duru.cli import main

main()
