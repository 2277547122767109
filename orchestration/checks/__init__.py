"""Python asset checks on the raw tables (dbt tests cover the models)."""
