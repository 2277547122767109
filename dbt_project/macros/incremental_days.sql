{#- Models that grow with time are incremental by local day (`partition_date`).

A run rebuilds the days in the model's day ledger, `incremental_state."<schema>__<model>__days"`
(schema incremental_state: bookkeeping, never published). The pre-hook `plan_rebuild_days`
marks days `pending`; the model selects only those days; the strategy `replace_days` deletes
them from the table and inserts the new rows (a pending day with no rows left is emptied); the
post-hook `finish_rebuild_days` marks them `rebuilt` and records the state. A failed build
leaves its days pending, so the next run rebuilds them too.

Pending days are:
- every day, when the table is new or rebuilt with --full-refresh, or when the fingerprint of
  what the rows are derived from besides the input's rows (reference tables, seeds, the model's
  code: its SQL, the views it reads and the macros they expand, a digest Dagster writes into
  `model_code` before each build) differs from the last successful build's: a new spellings
  seed changes every key, a fix to the staging SQL every row;
- the partition window of the run, written by Dagster into `incremental_state.run_window`
  (or vars partition_start / partition_end on the command line);
- days holding input rows loaded after the last successful build (`loaded_at` above its high
  water mark): a load outside a run, or a run whose dbt build failed;
- days the table has and the input no longer has (an emptied day);
- the days the upstream incremental model (`upstream`) rebuilt in this run;
- days reached by `expand_sql` from the pending days (rows sharing a record id).

Tests that can only fail on rebuilt rows are scoped to the rebuilt days with a `where` config
naming the ledger literally (dbt allows no macro there); the unique record id checks the ids of
the rebuilt days against the whole table (generic test `unique_among_rows`); raw = fact +
quarantine stays on the whole table. Rebuilt days stay `rebuilt` until every test scoped to
them has passed (a `warn` test: has run): Dagster clears them after a dbt build in which all of them passed
(orchestration/assets/rebuilt_days.py), so a day whose test failed stays in the tests' scope in
the next runs, and a run by hand leaves its days for the next run to check. Downstream models
rebuild the upstream's rebuilt days, so they also rebuild such a day again.
-#}

{% macro incremental_state_schema() -%}incremental_state{%- endmacro %}

{#- A model's bookkeeping table `kind` (days, months, state, changes) in incremental_state. -#}
{% macro incremental_state_relation(relation, kind) -%}
    {{ incremental_state_schema() }}."{{ relation.schema }}__{{ relation.identifier }}__{{ kind }}"
{%- endmacro %}

{% macro rebuild_days_relation(relation) -%}{{ incremental_state_relation(relation, 'days') }}{%- endmacro %}

{% macro rebuild_state_relation(relation) -%}{{ incremental_state_relation(relation, 'state') }}{%- endmacro %}

{#- The pending days, as a subquery for the model's filter. -#}
{% macro pending_days(relation=this) -%}
    (select day from {{ rebuild_days_relation(relation) }} where status = 'pending')
{%- endmacro %}

{#- The days the model rebuilt in its last successful build, and earlier rebuilt days whose
    scoped tests have not passed since (for downstream models and tests). -#}
{% macro rebuilt_days(relation) -%}
    (select day from {{ rebuild_days_relation(relation) }} where status = 'rebuilt')
{%- endmacro %}

{#- The digest of the code the model's rows are computed by (its SQL, the views it reads, the
    macros they expand), written by Dagster before each build (orchestration/assets/incremental_code.py);
    kept between builds, so a dbt run by hand reads the last one. -#}
{% macro model_code_relation() -%}{{ incremental_state_schema() }}.model_code{%- endmacro %}

{% macro create_model_code() -%}
    create table if not exists {{ model_code_relation() }} (relation varchar, digest varchar);
{%- endmacro %}

{#- One md5 over `texts` (strings: SQL text, var values), the rows of `queries` (each a
    select; rows are ordered, so the order the database returns them in does not matter) and the
    model's code digest (`model_code_relation`). -#}
{% macro inputs_fingerprint(texts=[], queries=[]) -%}
    md5(concat_ws('|',
        '{{ local_md5(texts | join("|")) }}',
        (select coalesce(max(digest), '') from {{ model_code_relation() }}
         where relation = '{{ this.schema }}__{{ this.identifier }}')
        {%- for q in queries %},
        (select coalesce(md5(string_agg(cast(t as varchar), ';' order by cast(t as varchar))), '')
         from ({{ q }}) as t)
        {%- endfor %}
    ))
{%- endmacro %}

{#- The run's window: the days Dagster wrote into `run_window` before invoking dbt (a table
    read when the model runs, so a new window every day leaves dbt's parsed project as it was:
    `--vars` that change would make dbt re-parse the whole project on every run). Vars
    partition_start / partition_end given on the command line (a run by hand) are used instead. -#}
{% macro run_window_relation() -%}
    {{ incremental_state_schema() }}.run_window
{%- endmacro %}

{% macro window_days() -%}
    {%- set start = var('partition_start', none) -%}
    {%- set end = var('partition_end', start) -%}
    {%- if start -%}
    select cast(unnest(generate_series(date '{{ start }}', date '{{ end }}', interval 1 day)) as date) as day
    {%- else -%}
    select day from {{ run_window_relation() }}
    {%- endif -%}
{%- endmacro %}

{% macro plan_rebuild_days(input, fingerprint, upstream=none, expand_sql=none, loaded_at='loaded_at') -%}
    {%- set days = rebuild_days_relation(this) -%}
    {%- set state = rebuild_state_relation(this) -%}
    create schema if not exists {{ incremental_state_schema() }};
    create table if not exists {{ days }} (day date, status varchar);
    create table if not exists {{ state }} (fingerprint varchar, high_water timestamptz, built_at timestamptz);
    create table if not exists {{ run_window_relation() }} (day date);
    {{ create_model_code() }}
    {% if not is_incremental() %}
    delete from {{ days }};
    insert into {{ days }} select distinct partition_date, 'pending' from {{ input }};
    {% else %}
    insert into {{ days }}
    with {{ fingerprint_changed(state, fingerprint) }}
    select day, 'pending' from (
        {{ window_days() }}
        union
        select distinct partition_date from {{ input }}
        where {{ loaded_at }} > coalesce((select max(high_water) from {{ state }}), timestamptz '1900-01-01')
        union
        (select distinct partition_date from {{ this }} except select distinct partition_date from {{ input }})
        {%- if upstream is not none %}
        union
        select day from {{ rebuilt_days(upstream) }}
        {%- endif %}
        union
        select distinct partition_date from {{ input }}
        where (select changed from fingerprint_changed)
        union
        select distinct partition_date from {{ this }}
        where (select changed from fingerprint_changed)
    ) as planned
    where day is not null and day not in {{ pending_days() }};
    {% if expand_sql is not none %}
    -- NULL days are deleted afterwards rather than filtered here: DuckDB pushed `day is not null`
    -- into the scan and then hashed all of its rows for the join (0.7 s at ten years, 0.05 s without)
    insert into {{ days }}
    select distinct day, 'pending' from ({{ expand_sql }}) as expanded
    where day not in {{ pending_days() }};
    delete from {{ days }} where day is null;
    {% endif %}
    {% endif %}
{%- endmacro %}

{#- `log_changes`: also append the rebuilt days to the model's change log (macros/incremental_months.sql),
    which a monthly mart consumes at its own pace (a mart skipped in a run still sees the days). -#}
{% macro finish_rebuild_days(input, fingerprint, loaded_at='loaded_at', log_changes=false) -%}
    {%- set days = rebuild_days_relation(this) -%}
    {%- set state = rebuild_state_relation(this) -%}
    {%- if log_changes %}
    {{ create_change_log(this) }}
    insert into {{ change_log_relation(this) }} select day, now() from {{ days }} where status = 'pending';
    {%- endif %}
    -- rebuilt days stay until the tests scoped to them pass (see the top of this file)
    delete from {{ days }} where status = 'rebuilt' and day in {{ pending_days() }};
    update {{ days }} set status = 'rebuilt' where status = 'pending';
    delete from {{ state }};
    insert into {{ state }}
    select {{ fingerprint }}, (select max({{ loaded_at }}) from {{ input }}), now();
{%- endmacro %}

{#- A CTE `fingerprint_changed` (one row, column `changed`): the fingerprint differs from the
    state's. Compared once and read by each branch that needs it: written into the branches
    themselves, DuckDB evaluated it against every input row (0.4 s a branch at ten years). -#}
{% macro fingerprint_changed(state, fingerprint) -%}
    fingerprint_changed as materialized (
        select (select max(fingerprint) from {{ state }}) is distinct from {{ fingerprint }} as changed
    )
{%- endmacro %}

{#- Whether a `replace_days` model rebuilds every row of its existing table: no row of it lies
    outside the pending days (a row with no day counts as outside). The incremental result, the
    table without the pending days' rows plus the model's select, is then the select alone, and
    the materialization (macros/materializations/incremental.sql) writes it once into a table
    that replaces the old one. Called after the pre-hook planned the days; a daily update finds a
    row outside at once (about 0.02 s at ten years), a rebuild of every day reads the day column. -#}
{% macro replaces_every_day(relation) -%}
    {%- if config.get('incremental_strategy') != 'replace_days' -%}
        {{ return(false) }}
    {%- endif -%}
    {#- not exists, not `not in`: a day without a date is outside whatever the ledger holds -#}
    {%- set outside = run_query(
        "select 1 from " ~ relation ~ " as t where not exists (select 1 from " ~ pending_days(relation)
        ~ " as p where p.day = t.partition_date) limit 1") -%}
    {%- set every_day = outside.rows | length == 0 -%}
    {%- if every_day %}
        {{- log("Every day of " ~ relation ~ " is rebuilt: the table is written once and replaces the old one", info=true) -}}
    {%- endif -%}
    {{ return(every_day) }}
{%- endmacro %}

{#- Delete the target's rows whose `key` is pending, insert the recomputed ones (the strategies
    `replace_days` here and `replace_months`, macros/incremental_months.sql). -#}
{% macro replace_pending_sql(arg_dict, key, pending) -%}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    delete from {{ target }} where {{ key }} in {{ pending }};
    insert into {{ target }} ({{ columns }}) select {{ columns }} from {{ arg_dict['temp_relation'] }};
{%- endmacro %}

{#- Strategy `replace_days`: delete the pending days, insert the rebuilt rows. -#}
{% macro get_incremental_replace_days_sql(arg_dict) -%}
    {{ replace_pending_sql(arg_dict, 'partition_date', pending_days(arg_dict['target_relation'])) }}
{%- endmacro %}

