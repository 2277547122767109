{#- Relations earlier versions of this project built under other names. dbt never drops a
    relation it no longer builds, so a warehouse built before a rename would keep the old copy;
    for the EMS ones that is patient data outside the restricted schema. Dropped at run start. -#}
{% macro drop_legacy_relations() -%}
    {%- set legacy = [
        ('quarantine', 'naloxone_administrations', 'table'),
        ('intermediate', 'int_naloxone_administrations__located', 'table'),
        ('staging', 'stg_ems__naloxone_administrations', 'view'),
        ('staging', 'stg_health__csa_indicators', 'view'),
    ] -%}
    {%- for schema, name, kind in legacy %}
    drop {{ kind }} if exists {{ schema }}.{{ name }};
    {%- endfor %}
{%- endmacro %}
