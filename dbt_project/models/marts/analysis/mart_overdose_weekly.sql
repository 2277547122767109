-- Overdose calls and naloxone administrations by week (Monday start) and CSA.
{{ overdose_rollup('week') }}
