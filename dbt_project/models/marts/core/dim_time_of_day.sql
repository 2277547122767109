-- Hours of the day with police shift and part of day, plus an Unknown member (-1).
with hours as (
    select cast(range as integer) as hour from range(0, 24)
)

select
    hour as time_of_day_key,
    hour,
    lpad(cast(hour as varchar), 2, '0') || ':00-' || lpad(cast(hour as varchar), 2, '0') || ':59' as hour_label,
    case
        when hour between 7 and 14 then 'Day (07:00-15:00)'
        when hour between 15 and 22 then 'Evening (15:00-23:00)'
        else 'Midnight (23:00-07:00)'
    end as shift,
    case
        when hour < 6 then 'Night'
        when hour < 12 then 'Morning'
        when hour < 18 then 'Afternoon'
        else 'Evening'
    end as day_part
from hours

union all

select -1, null, 'Unknown', 'Unknown', 'Unknown'
