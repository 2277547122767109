-- The baseline of bench/bench_pipeline.py: the warehouse's call transformations written as one
-- plain DuckDB script over the same raw tables (attached as `w`), without dbt, Dagster, checks or
-- publication. It computes what the pipeline's models compute, rule for rule, and
-- tests/test_bench_baseline.py checks that its fact, quarantine decisions and monthly mart equal
-- the pipeline's:
-- - staging: types, local time, trimmed text (the columns the fact and the decisions read);
-- - validation: the latest copy of a record, and the quarantine reasons (missing id, unparseable
--   time, duplicate, coordinates outside the city's box, unknown priority code);
-- - the neighborhood: the feed's name matched spelling-insensitively on a neighborhood's name or
--   alternate name, else the neighborhood the point falls in (the point-in-polygon table is an
--   input, as the raw tables are: the pipeline computes it in Python, with shapely);
-- - the call type: the description's characters normalized, the spellings seed applied, the
--   first matching rule of the rules seed, over distinct spellings;
-- - the geography and call type keys, the fact (every column of fct_calls_for_service) and the
--   monthly mart (mart_call_volume_monthly).
-- Numbers written here are the dbt project's vars (dbt_project.yml): local_timezone, city_extent
-- widened by city_box_margin_deg, priority_codes, call_description_truncation_min_chars.

-- a spelling-insensitive key for a place name (dbt macro name_key)
create or replace temp macro name_key(name) as regexp_replace(replace(
    regexp_replace(regexp_replace(regexp_replace(regexp_replace(
        ' ' || replace(lower(name), '&', ' and ') || ' ',
        '([\s/-])s\.?([\s/])', '\1south\2', 'g'),
        '([\s/-])n\.?([\s/])', '\1north\2', 'g'),
        '([\s/-])mt\.?([\s/])', '\1mount\2', 'g'),
        '([\s/-])st\.?([\s/])', '\1saint\2', 'g'),
    ' and ', ' '), '[^a-z0-9]', '', 'g');

create or replace temp macro clean(t) as nullif(regexp_replace(trim(t), '\s+', ' ', 'g'), '');

create or replace temp view stg as
select
    cast(recordId as bigint) as record_id,
    nullif(trim(callKey), '') as call_key,
    nullif(trim(callNumber), '') as call_number,
    cast(timezone('America/New_York', to_timestamp(callDateTime / 1000.0)) as timestamp) as called_at_local,
    nullif(trim(priority), '') as priority,
    upper(clean(district)) as district_code,
    nullif(trim(description), '') as description_raw,
    nullif(trim(incidentLocation), '') as incident_location,
    nullif(trim(Neighborhood), '') as neighborhood,
    nullif(trim(PolicePost), '') as police_post,
    nullif(trim(CouncilDistrict), '') as council_district,
    nullif(trim(Census_Tracts), '') as census_tract,
    try_cast(latitude as double) as latitude,
    try_cast(longitude as double) as longitude,
    _partition_date as partition_date,
    _source_row as source_row,
    _loaded_at as loaded_at
from w.raw.calls_for_service;

create or replace temp table geography as
select md5(upper(clean(neighborhood))) as geography_key, upper(clean(neighborhood)) as neighborhood_normalized,
    clean(csa) as csa, name_key(neighborhood) as name_key, name_key(clean(name_alt)) as name_alt_key
from w.raw.neighborhoods;

-- each neighborhood's name and alternate name (an alternate never shadows a name)
create or replace temp table names as
select name_key, neighborhood_normalized from geography
union all
select name_alt_key, neighborhood_normalized from geography
where name_alt_key is not null and name_alt_key not in (select name_key from geography);

create or replace temp table name_matches as
select seen.neighborhood, names.neighborhood_normalized
from (select distinct neighborhood from stg where neighborhood is not null) seen
join names on name_key(seen.neighborhood) = names.name_key;

-- the copies that lose to a later copy of the same record id, ranked on the key columns only
create or replace temp table superseded as
select partition_date, source_row, loaded_at
from (select record_id, partition_date, source_row, loaded_at from stg where record_id is not null)
qualify row_number() over (partition by record_id order by loaded_at desc, partition_date desc, source_row) > 1;

create or replace temp table validated as
select stg.*,
    coalesce(m.neighborhood_normalized, upper(clean(p.neighborhood))) as neighborhood_resolved,
    case when m.neighborhood_normalized is not null then 'feed' when p.latitude is not null then 'point_' || p.method end
        as geography_method,
    case
        when stg.record_id is null then 'missing_record_id'
        when stg.called_at_local is null then 'unparseable_timestamp'
        when s.source_row is not null then 'duplicate_record_id'
        when stg.latitude is not null
            and not (stg.latitude between 39.1872 and 39.3822 and stg.longitude between -76.7215 and -76.5194)
            then 'impossible_coordinates'
        when stg.priority is not null
            and stg.priority not in ('Non-Emergency', 'Low', 'Medium', 'High', 'Emergency', 'Out of Service')
            then 'unknown_priority_code'
    end as quarantine_reason
from stg
left join superseded s using (partition_date, source_row, loaded_at)
left join name_matches m on stg.neighborhood = m.neighborhood
left join w.geography.point_assignments p on stg.latitude = p.latitude and stg.longitude = p.longitude;

-- the description key: words split at a case change, upper case, '&' as AND, other characters
-- but letters, digits and '/' as spaces; then the spellings seed as whole words, longest first
create or replace temp table call_types as
with recursive
fixes as (
    select row_number() over (order by length(spelling) desc, spelling) as step,
        ' ' || replace(spelling, '/', ' / ') || ' ' as find, ' ' || replace(replacement, '/', ' / ') || ' ' as put
    from w.reference.call_description_spellings
),
texts as (
    select description_raw, nullif(trim(regexp_replace(regexp_replace(regexp_replace(replace(upper(
        regexp_replace(regexp_replace(description_raw, '([a-z])([A-Z])', '\1 \2', 'g'), '([A-Z])([A-Z][a-z])', '\1 \2', 'g')
    ), '&', ' AND '), '[^A-Z0-9/]+', ' ', 'g'), '\s*/\s*', '/', 'g'), '\s+', ' ', 'g')), '') as text
    from (select distinct description_raw from validated where description_raw is not null)
),
applied as (
    select description_raw, ' ' || replace(text, '/', ' / ') || ' ' as spaced, 0 as step from texts
    union all
    select a.description_raw, replace(a.spaced, f.find, f.put), a.step + 1
    from applied a join fixes f on f.step = a.step + 1
),
keyed as (
    select description_raw, nullif(trim(regexp_replace(replace(spaced, ' / ', '/'), '\s+', ' ', 'g')), '') as description_key
    from applied
    where step = (select count(*) from fixes)
),
ranked as (
    select k.description_key, r.category, r.is_overdose,
        row_number() over (partition by k.description_key order by r.rule_id) as rank
    from (select distinct description_key from keyed where description_key is not null) k
    left join w.reference.call_type_rules r on case r.match_type
        when 'exact' then k.description_key = r.pattern
        when 'starts_with' then starts_with(k.description_key, r.pattern)
        when 'contains_words' then contains(' ' || replace(k.description_key, '/', ' / ') || ' ', ' ' || replace(r.pattern, '/', ' / ') || ' ')
        when 'truncation_of' then starts_with(r.pattern, k.description_key) and length(k.description_key) >= 8
    end
)
select keyed.description_raw,
    case when keyed.description_key is null then '-1' else md5(keyed.description_key) end as call_type_key,
    case when keyed.description_key is null then 'Unknown' else coalesce(ranked.category, 'Unclassified') end
        as call_category,
    coalesce(ranked.is_overdose, false) as is_overdose
from keyed
left join ranked on ranked.description_key = keyed.description_key and ranked.rank = 1;

create or replace temp table fct as
select
    v.record_id as call_id,
    v.call_key,
    v.call_number,
    v.called_at_local,
    cast(strftime(v.called_at_local, '%Y%m%d') as integer) as date_key,
    cast(extract(hour from v.called_at_local) as integer) as time_of_day_key,
    coalesce(t.call_type_key, '-1') as call_type_key,
    coalesce(g.geography_key, '-1') as geography_key,
    v.priority,
    v.district_code,
    v.police_post,
    v.council_district,
    v.census_tract,
    v.incident_location,
    v.latitude,
    v.longitude,
    v.geography_method,
    v.partition_date,
    1 as call_count
from validated v
left join call_types t using (description_raw)
left join geography g on v.neighborhood_resolved = g.neighborhood_normalized
where v.quarantine_reason is null;

create or replace temp table mart_monthly as
select cast(date_trunc('month', f.called_at_local) as date) as month_start,
    coalesce(t.call_category, 'Unknown') as call_category, coalesce(g.csa, 'Unknown') as csa,
    sum(f.call_count) as call_count,
    sum(case when t.is_overdose then f.call_count else 0 end) as overdose_call_count
from fct f
left join (select distinct call_type_key, call_category, is_overdose from call_types) t using (call_type_key)
left join geography g using (geography_key)
group by all;
