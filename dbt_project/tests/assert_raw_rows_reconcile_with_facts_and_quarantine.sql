{{ config(meta={"dagster": {"asset_key": ["marts", "fct_calls_for_service"]}}) }}
-- Every raw row is in a fact table or in quarantine, exactly once, per load partition.
with raw_calls as (
    select _partition_date as partition_date, count(*) as n from {{ source('raw', 'calls_for_service') }} group by 1
), fct_calls as (
    select partition_date, count(*) as n from {{ ref('fct_calls_for_service') }} group by 1
), q_calls as (
    select partition_date, count(*) as n from {{ ref('quarantine_calls_for_service') }} group by 1
), raw_nal as (
    select _partition_date as partition_date, count(*) as n from {{ source('raw', 'naloxone_administrations') }} group by 1
), fct_nal as (
    select partition_date, count(*) as n from {{ ref('fct_naloxone_administrations') }} group by 1
), q_nal as (
    select partition_date, count(*) as n from {{ ref('quarantine_naloxone_administrations') }} group by 1
)

select 'calls_for_service' as table_name, r.partition_date, r.n as raw_rows,
    coalesce(f.n, 0) as fact_rows, coalesce(q.n, 0) as quarantined_rows
from raw_calls as r
left join fct_calls as f using (partition_date)
left join q_calls as q using (partition_date)
where r.n <> coalesce(f.n, 0) + coalesce(q.n, 0)

union all

select 'naloxone_administrations', r.partition_date, r.n, coalesce(f.n, 0), coalesce(q.n, 0)
from raw_nal as r
left join fct_nal as f using (partition_date)
left join q_nal as q using (partition_date)
where r.n <> coalesce(f.n, 0) + coalesce(q.n, 0)
