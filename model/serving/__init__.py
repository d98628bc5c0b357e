"""Serving: the GPU host's OpenAI-shaped API, its fine-tuning jobs, and the client and remote backend."""
