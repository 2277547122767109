{#- US federal holidays (5 U.S.C. 6103) for every date in `date_column` of `relation`:
    returns holiday_date, holiday_name, observed_date. Juneteenth counts from 2021.
    A holiday on a Saturday is observed the Friday before, on a Sunday the Monday after. -#}
{% macro us_federal_holidays(relation, date_column) -%}
with days as (
    select {{ date_column }} as d,
        extract(month from {{ date_column }}) as m,
        extract(day from {{ date_column }}) as dom,
        isodow({{ date_column }}) as dow
    from {{ relation }}
),
holidays as (
    select d as holiday_date,
        case
            when m = 1 and dom = 1 then 'New Year''s Day'
            when m = 1 and dow = 1 and dom between 15 and 21 then 'Martin Luther King Jr. Day'
            when m = 2 and dow = 1 and dom between 15 and 21 then 'Washington''s Birthday'
            when m = 5 and dow = 1 and dom >= 25 then 'Memorial Day'
            when m = 6 and dom = 19 and extract(year from d) >= 2021 then 'Juneteenth National Independence Day'
            when m = 7 and dom = 4 then 'Independence Day'
            when m = 9 and dow = 1 and dom <= 7 then 'Labor Day'
            when m = 10 and dow = 1 and dom between 8 and 14 then 'Columbus Day'
            when m = 11 and dom = 11 then 'Veterans Day'
            when m = 11 and dow = 4 and dom between 22 and 28 then 'Thanksgiving Day'
            when m = 12 and dom = 25 then 'Christmas Day'
        end as holiday_name,
        case dow when 6 then d - interval 1 day when 7 then d + interval 1 day else d end as observed_date
    from days
)
select holiday_date, holiday_name, cast(observed_date as date) as observed_date
from holidays
where holiday_name is not null
{%- endmacro %}
