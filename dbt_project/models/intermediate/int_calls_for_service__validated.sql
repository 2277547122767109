-- Every staged call with the reason it cannot enter the fact table (NULL when it can).
-- Of rows sharing a record id, the most recently loaded one is kept; the others are duplicates.
with ranked as (
    select
        *,
        row_number() over (
            partition by record_id order by loaded_at desc, partition_date desc, source_row
        ) as record_rank
    from {{ ref('stg_open_baltimore__calls_for_service') }}
)

select
    *,
    case
        when record_id is null then 'missing_record_id'
        when called_at_local is null then 'unparseable_timestamp'
        when record_rank > 1 then 'duplicate_record_id'
    end as quarantine_reason
from ranked
