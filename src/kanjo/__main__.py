"""`python -m kanjo` runs the command line."""

from kanjo.cli import main

main()
