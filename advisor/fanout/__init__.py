"""Fan-out of an assessment's independent pieces (rungs, evaluation shards) to a Ray cluster.

The driver asks its own store first: a rung it can answer from what is stored sends nothing. The
rest go out as Ray tasks, each working in a folder of its own on a copy of the task; what they
compute (stored answers, trained adapters, search studies) comes back to the driver, which alone
writes the store. The assessment is then measured from the store exactly as a local run would be.
"""
