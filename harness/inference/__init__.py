"""Running the model: loading it, building prompts, batched scoring and generation, the KV prefix cache."""
