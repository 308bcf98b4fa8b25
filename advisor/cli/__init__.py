"""The `advisor` command line: parsing options and printing; the only place errors become exit codes."""
