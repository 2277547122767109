"""Deterministic demo data in the exact raw formats of the real sources.

The generators are seeded per day, so any partition regenerates identically whether it is
built alone or as part of a range, and every generator is vectorized within a day.
"""
