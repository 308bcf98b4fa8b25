"""The tuned rungs: adapters and full fine-tuning trained by the harness itself."""
