{#- What the incremental naloxone models (macros/incremental_days.sql) depend on besides the
    administrations. A report day's rows depend on no other day's (an administration is keyed by
    its report day, incident number and patient sequence), so no day is reached from another. -#}

{#- int_naloxone_administrations__located: a row's reason and neighborhood depend on the model's
    code (with the staging view's and their macros: `inputs_fingerprint`), the vars of the
    reasons, and the neighborhood polygons the point assignments come from. -#}
{% macro located_naloxone_fingerprint() -%}
    {{ inputs_fingerprint(
        texts=[model.raw_code, var('medication_responses') | string, var('city_extent') | string,
               var('city_box_margin_deg') | string],
        queries=["select layer, name, md5(geometry_wkt) from " ~ source('reference', 'boundaries')
                    ~ " where layer = 'neighborhood'"]) }}
{%- endmacro %}

{#- fct_naloxone_administrations: a row's geography key depends on dim_geography. -#}
{% macro fct_naloxone_fingerprint() -%}
    {{ inputs_fingerprint(
        texts=[model.raw_code],
        queries=["select neighborhood_normalized, geography_key, is_unknown from " ~ ref('dim_geography')]) }}
{%- endmacro %}

{#- quarantine_naloxone_administrations: the held-back rows of the located ones, as they are. -#}
{% macro quarantine_naloxone_fingerprint() -%}
    {{ inputs_fingerprint(texts=[model.raw_code]) }}
{%- endmacro %}

{#- The hooks of the three models. -#}
{% macro plan_located_naloxone_days() -%}
    {{ plan_rebuild_days(ref('stg_bchd_ems__naloxone_administrations'), located_naloxone_fingerprint()) }}
{%- endmacro %}

{% macro finish_located_naloxone_days() -%}
    {{ finish_rebuild_days(ref('stg_bchd_ems__naloxone_administrations'), located_naloxone_fingerprint()) }}
{%- endmacro %}

{% macro plan_fct_naloxone_days() -%}
    {{ plan_rebuild_days(ref('int_naloxone_administrations__located'), fct_naloxone_fingerprint(),
                         upstream=ref('int_naloxone_administrations__located')) }}
{%- endmacro %}

{% macro finish_fct_naloxone_days() -%}
    {{ finish_rebuild_days(ref('int_naloxone_administrations__located'), fct_naloxone_fingerprint()) }}
{%- endmacro %}

{% macro plan_quarantine_naloxone_days() -%}
    {{ plan_rebuild_days(ref('int_naloxone_administrations__located'), quarantine_naloxone_fingerprint(),
                         upstream=ref('int_naloxone_administrations__located')) }}
{%- endmacro %}

{% macro finish_quarantine_naloxone_days() -%}
    {{ finish_rebuild_days(ref('int_naloxone_administrations__located'), quarantine_naloxone_fingerprint()) }}
{%- endmacro %}
