-- One row per raw 911 call: typed, local time, text trimmed (see macro trimmed_text). No business rules here.
with source as (
    select * from {{ source('open_baltimore', 'calls_for_service') }}
)

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
from source
