-- The baseline of bench/bench_pipeline.py: the warehouse's call transformations written as one
-- plain DuckDB script over the same raw table (attached as `w`), without dbt, Dagster, checks or
-- publication: staging (typed, local time, cleaned text), validation (latest copy of a record,
-- quarantine reasons), the call type (the same normalization and first matching rule, over
-- distinct spellings), the geography and date keys, the fact, and the monthly mart.
create or replace temp table stg as
select
    cast(recordId as bigint) as record_id,
    timezone('America/New_York', to_timestamp(callDateTime / 1000)) as called_at_local,
    nullif(trim(priority), '') as priority,
    nullif(regexp_replace(trim(description), '\s+', ' ', 'g'), '') as description_raw,
    nullif(trim(Neighborhood), '') as neighborhood,
    try_cast(latitude as double) as latitude,
    try_cast(longitude as double) as longitude,
    _partition_date as partition_date,
    _loaded_at as loaded_at,
    _source_row as source_row
from w.raw.calls_for_service;

create or replace temp table validated as
select *,
    case
        when record_id is null then 'missing_record_id'
        when called_at_local is null then 'unparseable_timestamp'
        when row_number() over (partition by record_id order by loaded_at desc, partition_date desc, source_row) > 1
            then 'duplicate_record_id'
        when latitude is not null and not (latitude between 39.1872 and 39.3822 and longitude between -76.7215 and -76.5194)
            then 'impossible_coordinates'
    end as quarantine_reason
from stg;

create or replace temp table spellings as
select description_raw,
    upper(regexp_replace(regexp_replace(description_raw, '([a-z])([A-Z])', '\1 \2', 'g'), '[^A-Za-z0-9/]+', ' ', 'g'))
        as description_key
from (select distinct description_raw from validated where description_raw is not null);

create or replace temp table call_types as
select s.description_raw, md5(s.description_key) as call_type_key, coalesce(r.category, 'Unclassified') as category
from spellings s
left join (
    select s2.description_key, r.category,
        row_number() over (partition by s2.description_key order by r.rule_id) as rank
    from (select distinct description_key from spellings) s2
    join w.reference.call_type_rules r
        on contains(' ' || replace(s2.description_key, '/', ' / ') || ' ', ' ' || replace(r.pattern, '/', ' / ') || ' ')
) r on r.description_key = s.description_key and r.rank = 1;

create or replace temp table geography as
select upper(neighborhood) as neighborhood_normalized, md5(upper(neighborhood)) as geography_key, csa
from w.raw.neighborhoods;

create or replace temp table fct as
select v.record_id as call_id, cast(strftime(v.called_at_local, '%Y%m%d') as integer) as date_key,
    extract(hour from v.called_at_local) as time_of_day_key,
    coalesce(t.call_type_key, '-1') as call_type_key, coalesce(g.geography_key, '-1') as geography_key,
    v.latitude, v.longitude, v.partition_date, 1 as call_count
from validated v
left join call_types t using (description_raw)
left join geography g on upper(v.neighborhood) = g.neighborhood_normalized
where v.quarantine_reason is null;

create or replace temp table mart_monthly as
select date_trunc('month', strptime(cast(f.date_key as varchar), '%Y%m%d')) as month_start,
    coalesce(t.category, 'Unknown') as call_category, coalesce(g.csa, 'Unknown') as csa, count(*) as call_count
from fct f
left join (select distinct call_type_key, category from call_types) t using (call_type_key)
left join geography g using (geography_key)
group by all;
