{#- How a 911 call description becomes a call type. Three steps, each editable without Python:

    1. description_text: the characters. Words run together are split at a case change
       (`NARCOTICSOutside` -> `NARCOTICS Outside`, `ProstitutionComp`), then upper case; `&` is AND;
       every other character but letters, digits and `/` is a space (`*PROWLER`, `**THREAT**`,
       `*PROT. ORDER`, `WELL-BEING`); spaces around `/` go (`F/ AUTO` -> `F/AUTO`); runs of spaces
       collapse (`911/NO  VOICE`).
    2. the spellings seed (call_description_spellings): known misspellings and abbreviations,
       replaced as whole words, longest first (`LARCENCY` -> `LARCENY`, `F/AUTO` -> `FROM AUTO`).
       The result is the description key: one call type per key.
    3. the rules seed (call_type_rules), tried in rule_id order; the first that matches classifies
       the key: `exact` (the key is the pattern), `starts_with`, `contains_words` (the pattern's
       words appear in the key as whole words, `/` separating words too) and `truncation_of` (the
       key is the pattern cut short, as the old CAD's 16-character field cuts `PROTECTIVE ORDER`
       to `PROTECTIVE ORDE`; at least `call_description_truncation_min_chars` characters).
       A key no rule matches is Unclassified.
-#}

{% macro description_text(column) -%}
    nullif(trim(regexp_replace(regexp_replace(regexp_replace(replace(upper(
        regexp_replace(regexp_replace({{ column }}, '([a-z])([A-Z])', '\1 \2', 'g'), '([A-Z])([A-Z][a-z])', '\1 \2', 'g')
    ), '&', ' AND '), '[^A-Z0-9/]+', ' ', 'g'), '\s*/\s*', '/', 'g'), '\s+', ' ', 'g')), '')
{%- endmacro %}

{#- Words of a normalized text padded with spaces, `/` a word of its own: the form in which
    whole-word replacement and matching are plain substring operations. -#}
{% macro spaced_words(column) -%}
    (' ' || replace({{ column }}, '/', ' / ') || ' ')
{%- endmacro %}

{#- select description_raw, description_key from `inputs` (a relation or CTE with a column
    `description_raw`; one row per distinct value is cheapest). -#}
{% macro call_description_keys(inputs) -%}
    with recursive
    fixes as (
        select
            row_number() over (order by length(spelling) desc, spelling) as step,
            {{ spaced_words('spelling') }} as find,
            {{ spaced_words('replacement') }} as put
        from {{ ref('call_description_spellings') }}
    ),

    texts as (
        select description_raw, {{ spaced_words(description_text('description_raw')) }} as spaced
        from {{ inputs }}
    ),

    applied as (
        select description_raw, spaced, 0 as step from texts
        union all
        select applied.description_raw, replace(applied.spaced, fixes.find, fixes.put), applied.step + 1
        from applied
        join fixes on fixes.step = applied.step + 1
    )

    select
        description_raw,
        nullif(trim(regexp_replace(replace(spaced, ' / ', '/'), '\s+', ' ', 'g')), '') as description_key
    from applied
    where step = (select count(*) from fixes)
{%- endmacro %}

{#- True when rule `r` (a row of call_type_rules) matches the description key `key`. -#}
{% macro call_type_rule_matches(key, r) -%}
    case {{ r }}.match_type
        when 'exact' then {{ key }} = {{ r }}.pattern
        when 'starts_with' then starts_with({{ key }}, {{ r }}.pattern)
        when 'contains_words' then contains({{ spaced_words(key) }}, {{ spaced_words(r ~ '.pattern') }})
        when 'truncation_of' then starts_with({{ r }}.pattern, {{ key }})
            and length({{ key }}) >= {{ var('call_description_truncation_min_chars') }}
    end
{%- endmacro %}

{#- select description_key and the first matching rule's fields (NULL when none matches) for
    each row of `keys` (a relation or CTE with a column `description_key`). -#}
{% macro classify_call_description_keys(keys) -%}
    select
        description_key,
        rule_id,
        match_type,
        pattern,
        category,
        subcategory,
        is_overdose
    from (
        select
            keys.description_key,
            rules.*,
            row_number() over (partition by keys.description_key order by rules.rule_id) as rule_rank
        from {{ keys }} as keys
        left join {{ ref('call_type_rules') }} as rules
            on {{ call_type_rule_matches('keys.description_key', 'rules') }}
    )
    where rule_rank = 1
{%- endmacro %}

{#- select description_raw, description_key and the first matching rule's fields (NULL when none
    matches) for each row of `inputs` (a relation or CTE with a column `description_raw`). -#}
{% macro classify_call_descriptions(inputs) -%}
    with keyed as (
        {{ call_description_keys(inputs) }}
    ),

    keys as (
        select distinct description_key from keyed where description_key is not null
    ),

    classified as (
        {{ classify_call_description_keys('keys') }}
    )

    select keyed.description_raw, keyed.description_key, classified.* exclude (description_key)
    from keyed
    left join classified using (description_key)
{%- endmacro %}
