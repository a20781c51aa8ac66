"""View models: what each page shows, as plain data read from fti's tables (no HTML)."""
