-- Calendar from `date_spine_start` to `date_spine_end`, with US federal holidays.
with spine as (
    select cast(range as date) as date_day
    from range(date '{{ var("date_spine_start") }}', date '{{ var("date_spine_end") }}' + interval 1 day, interval 1 day)
),

holidays as (
    {{ us_federal_holidays('spine', 'date_day') }}
),

observed as (
    select observed_date, string_agg(holiday_name, '; ') as observed_holiday_name
    from holidays
    group by observed_date
)

select
    {{ date_key('s.date_day') }} as date_key,
    s.date_day,
    extract(year from s.date_day) as year,
    extract(quarter from s.date_day) as quarter,
    extract(month from s.date_day) as month,
    monthname(s.date_day) as month_name,
    cast(date_trunc('month', s.date_day) as date) as month_start,
    cast(date_trunc('week', s.date_day) as date) as week_start,
    extract(isoyear from s.date_day) as iso_year,
    extract(week from s.date_day) as iso_week,
    extract(day from s.date_day) as day_of_month,
    extract(doy from s.date_day) as day_of_year,
    isodow(s.date_day) as day_of_week,
    dayname(s.date_day) as day_name,
    isodow(s.date_day) in (6, 7) as is_weekend,
    h.holiday_name is not null as is_federal_holiday,
    h.holiday_name as federal_holiday_name,
    o.observed_date is not null as is_federal_holiday_observed,
    o.observed_holiday_name
from spine as s
left join holidays as h on s.date_day = h.holiday_date
left join observed as o on s.date_day = o.observed_date
