-- mart_naloxone_outcomes_monthly holds every naloxone administration once: its counts add up to
-- the restricted fact's, month by month (rows returned are months where they differ; counts only).
-- It reads a patient-level model, so its failing rows are not kept (as for every such test).
-- A Dagster check on the mart (a test reading two models needs to be told which it checks).
{{ config(meta={'keep_failing_rows': false, 'dagster': {'ref': {'name': 'mart_naloxone_outcomes_monthly'}}}) }}

with mart as (
    select month_start, sum(administrations) as administrations
    from {{ ref('mart_naloxone_outcomes_monthly') }}
    group by 1
),

fact as (
    select cast(date_trunc('month', partition_date) as date) as month_start, count(*) as administrations
    from {{ ref('fct_naloxone_administrations') }}
    group by 1
)

select month_start, fact.administrations as in_fact, mart.administrations as in_mart
from fact
full outer join mart using (month_start)
where coalesce(fact.administrations, 0) <> coalesce(mart.administrations, 0)
