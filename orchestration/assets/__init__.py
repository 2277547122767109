"""Dagster assets: raw ingestion and the dbt models."""
