-- One row per raw 911 call: typed, local time, text trimmed (see macro trimmed_text). No business rules here.
-- The columns are macro staged_open_baltimore_calls, which the quarantine applies to its rows too.
with source as (
    select * from {{ source('open_baltimore', 'calls_for_service') }}
)

{{ staged_open_baltimore_calls('source') }}
