{#- Trim, collapse inner whitespace, and turn empty strings into NULL. -#}
{% macro clean_text(column) -%}
    nullif(regexp_replace(trim({{ column }}), '\s+', ' ', 'g'), '')
{%- endmacro %}

{#- Trim and turn empty strings into NULL, nothing more: the cheapest cleaning, for columns read
    per row (911 calls). Spelling variants (inner spaces, case) are resolved once per distinct
    value downstream (call descriptions, neighborhood names), not on every row. -#}
{% macro trimmed_text(column) -%}
    nullif(trim({{ column }}), '')
{%- endmacro %}

{#- Upper-cased clean text: the form used to match descriptions and names. -#}
{% macro normalized_text(column) -%}
    upper({{ clean_text(column) }})
{%- endmacro %}

{#- Stable surrogate key from one or more columns (md5 over their text, NULL-safe). -#}
{% macro surrogate_key(columns) -%}
    md5(concat_ws('|', {% for c in columns %}coalesce(cast({{ c }} as varchar), '<null>'){% if not loop.last %}, {% endif %}{% endfor %}))
{%- endmacro %}

{#- Key of the explicit Unknown member of every dimension. -#}
{% macro unknown_key() -%}'-1'{%- endmacro %}

{#- yyyymmdd integer key of a date, as used by dim_date. -#}
{% macro date_key(column) -%}
    cast(strftime({{ column }}, '%Y%m%d') as integer)
{%- endmacro %}
