{#- What the incremental call models (macros/incremental_days.sql) depend on besides the calls. -#}

{#- int_calls_for_service__validated: a row's result depends on the neighborhood names and
    boundaries, the model's SQL and the vars it uses. -#}
{% macro validated_calls_fingerprint() -%}
    {{ inputs_fingerprint(
        texts=[model.raw_code, var('priority_codes') | string, var('city_extent') | string,
               var('city_box_margin_deg') | string],
        queries=["select name_key, neighborhood_normalized from " ~ ref('int_reference__neighborhood_names'),
                 "select layer, name, md5(geometry_wkt) from " ~ source('reference', 'boundaries')
                    ~ " where layer = 'neighborhood'"]) }}
{%- endmacro %}

{#- A reloaded day changes which copy of a record id is kept in every other day holding that id
    (the most recently loaded copy wins): those days are rebuilt with it. -#}
{% macro validated_calls_sharing_record_ids() -%}
    {%- set staged = ref('stg_open_baltimore__calls_for_service') -%}
    select partition_date as day from {{ staged }}
    where record_id in (
        select record_id from {{ staged }} where partition_date in {{ pending_days() }}
        union
        select record_id from {{ this }} where partition_date in {{ pending_days() }}
    )
{%- endmacro %}

{#- fct_calls_for_service: a call's keys depend on its description key (the spellings seed and
    the key macro), the neighborhoods of dim_geography, and the model's SQL. Categories are not
    in the fact (dim_call_type), so a new rule does not rebuild it. -#}
{% macro fct_calls_fingerprint() -%}
    {{ inputs_fingerprint(
        texts=[model.raw_code, call_description_keys('inputs')],
        queries=["select * from " ~ ref('call_description_spellings'),
                 "select neighborhood_normalized, geography_key, is_unknown from " ~ ref('dim_geography')]) }}
{%- endmacro %}

{#- quarantine_calls_for_service: the held-back rows of the validated calls, as they are. -#}
{% macro quarantine_calls_fingerprint() -%}
    {{ inputs_fingerprint(texts=[model.raw_code]) }}
{%- endmacro %}

{#- The hooks of the three models (refs live here: models read their inputs in import CTEs). -#}
{% macro plan_validated_calls_days() -%}
    {{ plan_rebuild_days(ref('stg_open_baltimore__calls_for_service'), validated_calls_fingerprint(),
                         expand_sql=validated_calls_sharing_record_ids()) }}
{%- endmacro %}

{% macro finish_validated_calls_days() -%}
    {{ finish_rebuild_days(ref('stg_open_baltimore__calls_for_service'), validated_calls_fingerprint()) }}
{%- endmacro %}

{% macro plan_fct_calls_days() -%}
    {{ plan_rebuild_days(ref('int_calls_for_service__validated'), fct_calls_fingerprint(),
                         upstream=ref('int_calls_for_service__validated')) }}
{%- endmacro %}

{% macro finish_fct_calls_days() -%}
    {{ finish_rebuild_days(ref('int_calls_for_service__validated'), fct_calls_fingerprint(), log_changes=true) }}
{%- endmacro %}

{% macro plan_quarantine_calls_days() -%}
    {{ plan_rebuild_days(ref('int_calls_for_service__validated'), quarantine_calls_fingerprint(),
                         upstream=ref('int_calls_for_service__validated')) }}
{%- endmacro %}

{% macro finish_quarantine_calls_days() -%}
    {{ finish_rebuild_days(ref('int_calls_for_service__validated'), quarantine_calls_fingerprint()) }}
{%- endmacro %}
