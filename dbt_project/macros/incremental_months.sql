{#- Monthly marts recomputed by month: a day's update rebuilds the month it falls in, not the history.

An incremental daily model that logs its changes (`finish_rebuild_days(..., log_changes=true)`)
appends every day it rebuilt, with the time, to `incremental_state."<schema>__<model>__changes"`.
A monthly mart over it keeps its own month ledger (`..__months`) and state: the pre-hook
`plan_rebuild_months` marks pending the months of the days in the log (every day logged since
the mart last succeeded, however many builds of the daily model that spans: a mart that failed
or was skipped catches up), with the months of the calls those days now hold; every month, when
the mart's fingerprint (its SQL and the dimension rows it maps calls through) changes. Strategy
`replace_months` deletes the pending months and inserts them again; the post-hook, in the
mart's transaction, empties the log it consumed. DuckDB admits one writer, and the daily model
runs before the mart, so nothing is logged between the two hooks. A new table or
--full-refresh computes every month.
-#}

{% macro change_log_relation(relation) -%}{{ incremental_state_relation(relation, 'changes') }}{%- endmacro %}

{#- The change log's one definition: written by the daily model, read (and created if need be) by the mart. -#}
{% macro create_change_log(relation) -%}
    create table if not exists {{ change_log_relation(relation) }} (day date, built_at timestamptz);
{%- endmacro %}

{% macro rebuild_months_relation(relation) -%}{{ incremental_state_relation(relation, 'months') }}{%- endmacro %}

{% macro pending_months(relation=this) -%}
    (select month_start from {{ rebuild_months_relation(relation) }} where status = 'pending')
{%- endmacro %}

{#- `daily`: the logging daily model (with partition_date and date_key); `dates`: dim_date. -#}
{% macro plan_rebuild_months(daily, dates, fingerprint) -%}
    {%- set months = rebuild_months_relation(this) -%}
    {%- set state = rebuild_state_relation(this) -%}
    {%- set changes = change_log_relation(daily) -%}
    create schema if not exists {{ incremental_state_schema() }};
    create table if not exists {{ months }} (month_start date, status varchar);
    create table if not exists {{ state }} (fingerprint varchar, built_at timestamptz);
    {{ create_model_code() }}
    {{ create_change_log(daily) }}
    {% if not is_incremental() %}
    delete from {{ months }};
    {% else %}
    insert into {{ months }}
    with {{ fingerprint_changed(state, fingerprint) }},
    changed_days as materialized (select distinct day from {{ changes }})
    select month_start, 'pending' from (
        select cast(date_trunc('month', day) as date) as month_start from changed_days
        union
        select d.month_start from {{ daily }} as f join {{ dates }} as d using (date_key)
        where f.partition_date in (select day from changed_days)
        union
        select month_start from {{ this }} where (select changed from fingerprint_changed)
        union
        select d.month_start from {{ daily }} as f join {{ dates }} as d using (date_key)
        where (select changed from fingerprint_changed)
    ) as planned
    where month_start not in {{ pending_months() }};
    delete from {{ months }} where month_start is null;
    {% endif %}
{%- endmacro %}

{% macro finish_rebuild_months(daily, fingerprint) -%}
    {%- set months = rebuild_months_relation(this) -%}
    {%- set state = rebuild_state_relation(this) -%}
    {%- set changes = change_log_relation(daily) -%}
    delete from {{ months }} where status = 'rebuilt';
    update {{ months }} set status = 'rebuilt' where status = 'pending';
    delete from {{ state }};
    insert into {{ state }} (fingerprint, built_at) select {{ fingerprint }}, now();
    delete from {{ changes }};
{%- endmacro %}

{#- Strategy `replace_months`: delete the pending months, insert the recomputed rows. -#}
{% macro get_incremental_replace_months_sql(arg_dict) -%}
    {{ replace_pending_sql(arg_dict, 'month_start', pending_months(arg_dict['target_relation'])) }}
{%- endmacro %}

{#- mart_call_volume_monthly: a call's month, category and CSA come through these dimensions. -#}
{% macro call_volume_months_fingerprint() -%}
    {{ inputs_fingerprint(
        texts=[model.raw_code],
        queries=["select date_key, month_start from " ~ ref('dim_date'),
                 "select call_type_key, call_category, is_overdose from " ~ ref('dim_call_type'),
                 "select geography_key, csa from " ~ ref('dim_geography')]) }}
{%- endmacro %}

{% macro plan_call_volume_months() -%}
    {{ plan_rebuild_months(ref('fct_calls_for_service'), ref('dim_date'), call_volume_months_fingerprint()) }}
{%- endmacro %}

{% macro finish_call_volume_months() -%}
    {{ finish_rebuild_months(ref('fct_calls_for_service'), call_volume_months_fingerprint()) }}
{%- endmacro %}
