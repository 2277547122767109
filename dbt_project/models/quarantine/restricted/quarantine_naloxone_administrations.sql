{{ config(
    materialized='incremental',
    incremental_strategy='replace_days',
    on_schema_change='fail',
    pre_hook={"sql": "{{ plan_quarantine_naloxone_days() }}", "transaction": false},
    post_hook="{{ finish_quarantine_naloxone_days() }}",
) }}
-- Naloxone administrations that could not enter the fact table, with the reason and the
-- load partition. Restricted like raw (schema restricted): it keeps what the report said.
-- Incremental by report day (macros/incremental_days.sql): the days the located ones rebuilt.
with validated as (
    select * from {{ ref('int_naloxone_administrations__located') }}
    {%- if is_incremental() %}
    where partition_date in {{ pending_days() }}
    {%- endif %}
)

select
    partition_date,
    quarantine_reason,
    incident_number,
    patient_sequence,
    incident_date_raw,
    source_row,
    load_source,
    loaded_at
from validated
where quarantine_reason is not null
