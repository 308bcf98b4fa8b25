"""Remote OpenAI-compatible endpoints as the place a prompting rung runs."""
