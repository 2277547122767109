-- Per load partition and table: raw rows, rows in the fact table and rows quarantined, by reason.
-- Counts only, so BI can show what each day held back without exposing the rows.
with raw_calls as (
    select * from {{ source('open_baltimore', 'calls_for_service') }}
),

raw_naloxone as (
    select * from {{ source('bchd_ems', 'naloxone_administrations') }}
),

call_facts as (
    select * from {{ ref('fct_calls_for_service') }}
),

naloxone_facts as (
    select * from {{ ref('fct_naloxone_administrations') }}
),

quarantined_calls as (
    select * from {{ ref('quarantine_calls_for_service') }}
),

quarantined_naloxone as (
    select * from {{ ref('quarantine_naloxone_administrations') }}
),

raw_rows as (
    select 'calls_for_service' as table_name, _partition_date as partition_date, count(*) as raw_rows
    from raw_calls group by all
    union all
    select 'naloxone_administrations', _partition_date, count(*)
    from raw_naloxone group by all
),

fact_rows as (
    select 'calls_for_service' as table_name, partition_date, count(*) as fact_rows
    from call_facts group by all
    union all
    select 'naloxone_administrations', partition_date, count(*)
    from naloxone_facts group by all
),

quarantined as (
    select 'calls_for_service' as table_name, partition_date, quarantine_reason
    from quarantined_calls
    union all
    select 'naloxone_administrations', partition_date, quarantine_reason
    from quarantined_naloxone
),

reasons as (
    select table_name, partition_date, count(*) as quarantined_rows,
        count(*) filter (where quarantine_reason = 'duplicate_record_id') as duplicate_rows,
        count(*) filter (where quarantine_reason = 'unparseable_timestamp') as unparseable_timestamp_rows,
        count(*) filter (where quarantine_reason in ('impossible_coordinates', 'coordinates_outside_baltimore'))
            as bad_coordinate_rows,
        count(*) filter (where quarantine_reason = 'missing_coordinates') as missing_coordinate_rows,
        string_agg(distinct quarantine_reason, ', ' order by quarantine_reason) as reasons
    from quarantined group by all
)

select
    r.table_name,
    r.partition_date,
    r.raw_rows,
    coalesce(f.fact_rows, 0) as fact_rows,
    coalesce(q.quarantined_rows, 0) as quarantined_rows,
    coalesce(q.duplicate_rows, 0) as duplicate_rows,
    coalesce(q.unparseable_timestamp_rows, 0) as unparseable_timestamp_rows,
    coalesce(q.bad_coordinate_rows, 0) as bad_coordinate_rows,
    coalesce(q.missing_coordinate_rows, 0) as missing_coordinate_rows,
    q.reasons
from raw_rows as r
left join fact_rows as f using (table_name, partition_date)
left join reasons as q using (table_name, partition_date)
