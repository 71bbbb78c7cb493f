"""The lake: versioned tables (Delta) and SQL over them (DuckDB)."""
