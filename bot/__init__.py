"""copybot: the application layer (CLI, Slack bot, jobs) where the model and the store meet."""

__version__ = "0.1.0"
