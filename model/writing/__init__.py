"""Writing copy: from a brief to checked candidates (prompt, engine, clean-up, register, screen, frame)."""
