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

decisions as (
    select partition_date, source_row, loaded_at, quarantine_reason
    from validated
    where quarantine_reason is not null
    {%- if is_incremental() %}
        and partition_date in {{ pending_days() }}
    {%- endif %}
),

-- the row as staged: the validated table keeps only the decision
staged as (
    select * from {{ ref('stg_open_baltimore__calls_for_service') }}
    {%- if is_incremental() %}
    where partition_date in {{ pending_days() }}
    {%- endif %}
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
