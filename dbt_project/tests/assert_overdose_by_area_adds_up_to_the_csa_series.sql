-- mart_overdose_daily_by_area (neighborhood grain, events only) adds up to mart_overdose_daily
-- (CSA grain, zero-filled, its sums by CSA) on every day: the zero-filling adds no event and
-- loses none. Rows returned are days where they differ.
{{ config(meta={'dagster': {'ref': {'name': 'mart_overdose_daily'}}}) }}
with by_area as (
    select day, sum(overdose_calls) as calls, sum(naloxone_administrations) as naloxone,
           sum(nonfatal_overdoses) as nonfatal
    from {{ ref('mart_overdose_daily_by_area') }}
    group by 1
),

by_csa as (
    select day, sum(overdose_calls) as calls, sum(naloxone_administrations) as naloxone,
           sum(nonfatal_overdoses) as nonfatal
    from {{ ref('mart_overdose_daily') }}
    group by 1
)

select *
from by_csa
full outer join by_area using (day)
where coalesce(by_csa.calls, 0) <> coalesce(by_area.calls, 0)
    or coalesce(by_csa.naloxone, 0) <> coalesce(by_area.naloxone, 0)
    or coalesce(by_csa.nonfatal, 0) <> coalesce(by_area.nonfatal, 0)
