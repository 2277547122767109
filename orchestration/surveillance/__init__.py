"""Overdose spike surveillance: the prospective space-time permutation scan and EARS alerts."""
