-- One row per patient given naloxone, typed and cleaned. Contains PHI (age, sex, race):
-- only restricted models read it; marts expose aggregates and age bands.
with source as (
    select * from {{ source('bchd_ems', 'naloxone_administrations') }}
),

typed as (
    select
        {{ clean_text('"Incident Number"') }} as incident_number,
        {{ ems_date('"Incident Date"') }} as incident_date,
        -- a full timestamp, or a bare time of day (some exports) on the incident date
        {{ ems_timestamp('"Times : Arrived on Scene Time"', '"Incident Date"') }} as arrived_on_scene_at_local,
        try_cast(regexp_extract("Patient Age", '\d+') as integer) as patient_age,
        {{ clean_text('"Patient Gender"') }} as patient_gender,
        {{ clean_text('"Patient Race (E6.12)"') }} as patient_race,
        {{ normalize_address('"Incident Address"') }} as incident_address,
        {{ clean_text('"Primary Impression"') }} as primary_impression,
        {{ coordinate('"Incident Location Latitude"') }} as latitude,
        {{ coordinate('"Incident Location Longitude"') }} as longitude,
        {{ clean_text('"Destination Code (E20.2)"') }} as destination,
        {{ clean_text('"Medication Administered (E18.3)"') }} as medication,
        {{ clean_text('"Medication Response - to Med (E18.7)"') }} as medication_response,
        try_cast(regexp_extract("Medication Dosage (E18.5)", '[0-9]*\.?[0-9]+') as double) as dose_mg,
        {{ clean_text('"Destination Patient Disposition (E20.10)"') }} as disposition,
        "Incident Date" as incident_date_raw,
        _partition_date as partition_date,
        _report_date as report_date,
        _arrival as arrival,
        _source as load_source,
        _source_row as source_row,
        _loaded_at as loaded_at
    from source
)

select
    *,
    -- patients of one incident are told apart by their order in the delivered report
    row_number() over (partition by partition_date, incident_number order by source_row) as patient_sequence
from typed
