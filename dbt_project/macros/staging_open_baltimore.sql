{#- The staging of raw 911 calls, given the relation holding the raw rows (the raw contract's
    column names). stg_open_baltimore__calls_for_service is this over every raw call; the
    quarantine applies it to the few rows it holds, after filtering the raw table: DuckDB computes
    a view's columns before a join above it filters the rows, so joining the staging view cost a
    ten-year build the text cleaning of every call (1.4-1.8 s against 0.27 s; docs/performance.md,
    twenty-second round). One definition, so both stage a row the same way. -#}
{% macro staged_open_baltimore_calls(raw_calls) -%}
select
    cast(recordId as bigint) as record_id,
    cast(OBJECTID as bigint) as object_id,
    {{ trimmed_text('callKey') }} as call_key,
    {{ trimmed_text('callNumber') }} as call_number,
    callDateTime as call_epoch_ms,
    {{ local_time_of_epoch_ms('callDateTime') }} as called_at_local,
    {{ trimmed_text('priority') }} as priority,
    {{ normalized_text('district') }} as district_code,
    {{ trimmed_text('description') }} as description_raw,
    {{ trimmed_text('incidentLocation') }} as incident_location,
    {{ trimmed_text('Neighborhood') }} as neighborhood,
    {{ trimmed_text('PoliceDistrict') }} as police_district,
    {{ trimmed_text('PolicePost') }} as police_post,
    {{ trimmed_text('CouncilDistrict') }} as council_district,
    {{ trimmed_text('Community_Statistical_Areas') }} as csa,
    {{ trimmed_text('Census_Tracts') }} as census_tract,
    {{ trimmed_text('ZIPCode') }} as zip_code,
    {{ coordinate('latitude') }} as latitude,
    {{ coordinate('longitude') }} as longitude,
    _partition_date as partition_date,
    _source as load_source,
    _source_row as source_row,
    _loaded_at as loaded_at
from {{ raw_calls }}
{%- endmacro %}
