{{ config(alias='calls_for_service') }}
-- Calls that could not enter fct_calls_for_service, with the reason and the load partition.
with validated as (
    select * from {{ ref('int_calls_for_service__validated') }}
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
where quarantine_reason is not null
