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

{#- Stable surrogate key from one or more columns (md5 over their text, NULL-safe): a record's
    id, where the text form is fine. Dimension keys, repeated on every fact row, use `dimension_key`. -#}
{% macro surrogate_key(columns) -%}
    md5(concat_ws('|', {% for c in columns %}coalesce(cast({{ c }} as varchar), '<null>'){% if not loop.last %}, {% endif %}{% endfor %}))
{%- endmacro %}

{#- Stable integer key of a dimension member: the first 13 hex digits of the md5 of its columns
    (52 bits: positive, exact in a JavaScript number, and a collision among a few thousand
    members would fail the dimension's unique test rather than pass silently). An integer because
    the fact repeats it on every call: at ten years a 32-character md5 column costs about 2.5 s
    to write and twice the time to hash against 0.5 s for a BIGINT (docs/performance.md). -#}
{% macro dimension_key(columns) -%}
    cast('0x' || left({{ surrogate_key(columns) }}, 13) as bigint)
{%- endmacro %}

{#- Key of the explicit Unknown member of every dimension. -#}
{% macro unknown_key() -%}cast(-1 as bigint){%- endmacro %}

{#- yyyymmdd integer key of a date, as used by dim_date. -#}
{% macro date_key(column) -%}
    cast(strftime({{ column }}, '%Y%m%d') as integer)
{%- endmacro %}
