{{ config(
    alias='calls_for_service',
    materialized='incremental',
    incremental_strategy='replace_days',
    on_schema_change='fail',
    pre_hook={"sql": "{{ plan_quarantine_calls_days() }}", "transaction": false},
    post_hook="{{ finish_quarantine_calls_days() }}",
) }}
-- Calls that could not enter fct_calls_for_service, with the reason and the load partition.
-- Incremental by day (macros/incremental_days.sql): the days the validated calls rebuilt.
with validated as (
    select * from {{ ref('int_calls_for_service__validated') }}
),

-- raw, not staging: DuckDB computes a view's columns before a join filters its rows, so joining
-- the staging view cleaned the text of every call to keep the few held back
raw_calls as (
    select * from {{ source('open_baltimore', 'calls_for_service') }}
),

decisions as (
    select partition_date, source_row, loaded_at, quarantine_reason
    from validated
    where quarantine_reason is not null
    {%- if is_incremental() %}
        and partition_date in {{ pending_days() }}
    {%- endif %}
),

-- the raw rows held back, found before they are staged
held_back as (
    select raw_calls.*
    from raw_calls
    semi join decisions
        on raw_calls._partition_date = decisions.partition_date
        and raw_calls._source_row = decisions.source_row
        and raw_calls._loaded_at = decisions.loaded_at
    {%- if is_incremental() %}
    where raw_calls._partition_date in {{ pending_days() }}
    {%- endif %}
),

-- the rows as stg_open_baltimore__calls_for_service stages them (the same macro)
staged as (
    {{ staged_open_baltimore_calls('held_back') }}
)

select
    staged.partition_date,
    decisions.quarantine_reason,
    staged.record_id,
    staged.call_key,
    staged.call_number,
    staged.call_epoch_ms,
    staged.description_raw,
    staged.neighborhood,
    staged.source_row,
    staged.load_source,
    staged.loaded_at
from staged
join decisions using (partition_date, source_row, loaded_at)
