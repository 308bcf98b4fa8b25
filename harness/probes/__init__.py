"""General-skill probes and forgetting: what a tuned model loses."""
