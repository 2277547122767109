"""Baltimore public-safety and public-health warehouse: Dagster + dbt-duckdb."""
