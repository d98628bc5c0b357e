"""The weekly retraining report: figures from the store, charts, Markdown on disk, and the Slack post."""
