"""The prompting rungs: the model as it is, asked in different ways."""
