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
    where quarantine_reason is not null
    {%- if is_incremental() %}
        and partition_date in {{ pending_days() }}
    {%- endif %}
)

select
    partition_date,
    quarantine_reason,
    record_id,
    call_key,
    call_number,
    call_epoch_ms,
    description_raw,
    neighborhood,
    source_row,
    load_source,
    loaded_at
from validated
