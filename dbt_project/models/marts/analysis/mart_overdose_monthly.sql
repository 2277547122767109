-- Overdose calls and naloxone administrations by month and CSA.
{{ overdose_rollup('month') }}
