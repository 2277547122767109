-- Calls by month x call category x CSA: the trend view for BI.
select
    d.month_start,
    ct.call_category,
    geo.csa,
    sum(f.call_count) as call_count,
    sum(case when ct.is_overdose then f.call_count else 0 end) as overdose_call_count
from {{ ref('fct_calls_for_service') }} as f
join {{ ref('dim_date') }} as d using (date_key)
join {{ ref('dim_call_type') }} as ct using (call_type_key)
join {{ ref('dim_geography') }} as geo using (geography_key)
group by all
