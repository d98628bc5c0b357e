"""`python -m bot` runs the copybot CLI."""

from bot.cli.main import main

main()
