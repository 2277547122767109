{#- Normalize a street address: upper case, single spaces, no trailing punctuation, and the
    USPS abbreviations for common suffixes and directions (STREET -> ST, NORTH -> N). -#}
{% macro normalize_address(column) -%}
    {%- set words = {'STREET': 'ST', 'AVENUE': 'AVE', 'ROAD': 'RD', 'BOULEVARD': 'BLVD', 'DRIVE': 'DR',
                     'LANE': 'LN', 'PLACE': 'PL', 'COURT': 'CT', 'TERRACE': 'TER', 'PARKWAY': 'PKWY',
                     'HIGHWAY': 'HWY', 'NORTH': 'N', 'SOUTH': 'S', 'EAST': 'E', 'WEST': 'W'} -%}
    {%- set ns = namespace(expr="regexp_replace(upper(" ~ clean_text(column) ~ "), '[.,]+', '', 'g')") -%}
    {%- for long, short in words.items() -%}
        {%- set ns.expr = "regexp_replace(" ~ ns.expr ~ ", '\\b" ~ long ~ "\\b', '" ~ short ~ "', 'g')" -%}
    {%- endfor -%}
    {{ ns.expr }}
{%- endmacro %}
