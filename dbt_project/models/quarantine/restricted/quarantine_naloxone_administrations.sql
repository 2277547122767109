-- Naloxone administrations that could not enter the fact table, with the reason and the
-- load partition. Restricted like raw (schema restricted): it keeps what the report said.
with validated as (
    select * from {{ ref('int_naloxone_administrations__located') }}
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
