-- mart_call_volume_monthly counts every call of the fact once, in the month of its date key.
-- It is recomputed by month (macros/incremental_months.sql): a month it missed would differ here.
-- Rows returned are months where the counts differ (the date key's month is its first six digits).
-- A Dagster check on the mart (a test reading two models needs to be told which it checks).
{{ config(meta={'dagster': {'ref': {'name': 'mart_call_volume_monthly'}}}) }}
with mart as (
    select year(month_start) * 100 + month(month_start) as year_month, sum(call_count) as calls
    from {{ ref('mart_call_volume_monthly') }}
    group by 1
),

fact as (
    select date_key // 100 as year_month, count(*) as calls
    from {{ ref('fct_calls_for_service') }}
    group by 1
)

select year_month, mart.calls as mart_calls, fact.calls as fact_calls
from mart
full join fact using (year_month)
where mart.calls is distinct from fact.calls
