"""The dated price table and the $ formulas."""
