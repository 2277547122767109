{{ config(
    materialized='incremental',
    incremental_strategy='replace_months',
    on_schema_change='fail',
    pre_hook={"sql": "{{ plan_call_volume_months() }}", "transaction": false},
    post_hook="{{ finish_call_volume_months() }}",
) }}
-- Calls by month x call category x CSA: the trend view for BI. Incremental by month
-- (macros/incremental_months.sql): the months of the days the fact rebuilt.
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
{%- if is_incremental() %}
where d.month_start in {{ pending_months() }}
{%- endif %}
group by all
