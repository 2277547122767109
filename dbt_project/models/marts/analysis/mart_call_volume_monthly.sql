-- Calls by month x call category x CSA: the trend view for BI.
with calls as (
    select * from {{ ref('fct_calls_for_service') }}
),

dates as (
    select * from {{ ref('dim_date') }}
),

call_types as (
    select * from {{ ref('dim_call_type') }}
),

geography as (
    select * from {{ ref('dim_geography') }}
)

select
    d.month_start,
    ct.call_category,
    geo.csa,
    sum(f.call_count) as call_count,
    sum(case when ct.is_overdose then f.call_count else 0 end) as overdose_call_count
from calls as f
join dates as d using (date_key)
join call_types as ct using (call_type_key)
join geography as geo using (geography_key)
group by all
