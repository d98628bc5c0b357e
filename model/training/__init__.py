"""Training: datasets from feedback and the corpus, fine-tuning, evaluation and the gate, the registry."""
