"""Reports rendered from one Assessment."""
