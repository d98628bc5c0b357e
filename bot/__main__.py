"""`python -m bot` runs the copybot CLI."""

from bot.cli import main

main()
