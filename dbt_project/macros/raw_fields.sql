{#- How raw fields are read: the one home of each parsing rule.

    Staging models call these macros, and the Python raw checks render the same macros
    (orchestration/sql_rules.py), so a format change is one edit. Keep them self-contained:
    plain Jinja, `var()` and the other macros of this file only. -#}

{#- Local (var local_timezone) wall-clock TIMESTAMP of an epoch-millisecond UTC instant: 911 callDateTime. -#}
{% macro local_time_of_epoch_ms(column) -%}
    cast(timezone('{{ var("local_timezone") }}', to_timestamp({{ column }} / 1000.0)) as timestamp)
{%- endmacro %}

{#- A DuckDB list literal of strptime formats. -#}
{% macro _formats(formats) -%}
    [{% for f in formats %}'{{ f }}'{% if not loop.last %}, {% endif %}{% endfor %}]
{%- endmacro %}

{#- EMS `Incident Date` as a DATE (NULL when unparseable), in any of var ems_date_formats. -#}
{% macro ems_date(column) -%}
    cast(try_strptime(trim({{ column }}), {{ _formats(var('ems_date_formats')) }}) as date)
{%- endmacro %}

{#- EMS `Times : Arrived on Scene Time`: a full timestamp, or a bare time of day on the incident date. -#}
{% macro ems_timestamp(column, date_column) -%}
    coalesce(
        try_strptime(trim({{ column }}), {{ _formats(var('ems_timestamp_formats')) }}),
        {{ ems_date(date_column) }}
            + cast(try_strptime(trim({{ column }}), {{ _formats(var('ems_time_formats')) }}) as time)
    )
{%- endmacro %}

{#- A coordinate as DOUBLE, NULL when it is not a number (EMS sends text; the 911 feed numbers). -#}
{% macro coordinate(column) -%}
    try_cast({{ column }} as double)
{%- endmacro %}

{#- True when the point lies inside the city's extent (var city_extent: min lon, min lat, max lon,
    max lat) widened by var city_box_margin_deg: the quality gate's box. -#}
{% macro inside_city(lat, lon) -%}
    {%- set e = var('city_extent') -%}
    {%- set m = var('city_box_margin_deg') -%}
    ({{ lat }} between {{ e[1] - m }} and {{ e[3] + m }}
     and {{ lon }} between {{ e[0] - m }} and {{ e[2] + m }})
{%- endmacro %}

{#- A spelling-insensitive key for a place name: case, punctuation, spacing, '&'/'and' and the
    standalone abbreviations S./N./Mt./St. (South, North, Mount, Saint) are ignored, so
    "Coppin Heights/Ash-Co-East" = "COPPIN HEIGHTS ASH CO EAST" and "St. Josephs" = "Saint Josephs".
    The "s" of "Butcher's" is not an abbreviation. -#}
{% macro name_key(column) -%}
    {%- set ns = namespace(expr="' ' || replace(lower(" ~ column ~ "), '&', ' and ') || ' '") -%}
    {%- for short, long in [('s', 'south'), ('n', 'north'), ('mt', 'mount'), ('st', 'saint')] -%}
        {%- set ns.expr = "regexp_replace(" ~ ns.expr ~ ", '([\\s/-])" ~ short ~ "\\.?([\\s/])', '\\1" ~ long ~ "\\2', 'g')" -%}
    {%- endfor -%}
    regexp_replace(replace({{ ns.expr }}, ' and ', ' '), '[^a-z0-9]', '', 'g')
{%- endmacro %}
