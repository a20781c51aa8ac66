"""fti's SQL tables (catalog, registry, predictions), engine and migrations."""
