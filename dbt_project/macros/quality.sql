{#- True when the point lies inside the city's bounding box (vars city_min_lat ...). -#}
{% macro inside_city(lat, lon) -%}
    ({{ lat }} between {{ var('city_min_lat') }} and {{ var('city_max_lat') }}
     and {{ lon }} between {{ var('city_min_lon') }} and {{ var('city_max_lon') }})
{%- endmacro %}

{#- A SQL list of quoted string literals. -#}
{% macro quoted_list(values) -%}
    {%- for v in values %}'{{ v | replace("'", "''") }}'{% if not loop.last %}, {% endif %}{% endfor -%}
{%- endmacro %}
