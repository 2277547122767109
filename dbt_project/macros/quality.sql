{#- A SQL list of quoted string literals. -#}
{% macro quoted_list(values) -%}
    {%- for v in values %}'{{ v | replace("'", "''") }}'{% if not loop.last %}, {% endif %}{% endfor -%}
{%- endmacro %}
