"""The Slack side of copybot: parsing, Block Kit, listeners, the generation pool and the servers."""
