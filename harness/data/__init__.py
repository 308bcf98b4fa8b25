"""The user's data and what is kept of it: loading splits, labels, content hashes, the SQLite store, atomic writes."""
