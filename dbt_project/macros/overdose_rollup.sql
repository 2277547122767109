{#- Roll mart_overdose_daily up to weeks (Monday start) or months, per CSA. -#}
{% macro overdose_rollup(grain) -%}
with daily as (
    select * from {{ ref('mart_overdose_daily') }}
)

select
    cast(date_trunc('{{ grain }}', day) as date) as period_start,
    csa,
    count(*) as days_in_period,
    sum(overdose_calls) as overdose_calls,
    sum(naloxone_administrations) as naloxone_administrations,
    sum(nonfatal_overdoses) as nonfatal_overdoses
from daily
group by all
{%- endmacro %}
