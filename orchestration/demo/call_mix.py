"""The raw `description` mix of the demo 911 calls, as dispatchers type it.

Weights are shares (per cent, roughly Baltimore's mix). The variants reproduce the real
feed's mess: mixed case, doubled spaces (`911/NO  VOICE`), words run together
(`NARCOTICSOutside`), typos (`COMMON ASSUALT`). The long tail at the end is text that no
mapping knows, so the call-type dimension's `Unclassified` member is exercised.
This list deliberately does not read the mapping seed: coverage is measured, not assumed.
"""

from __future__ import annotations

DESCRIPTION_MIX: tuple[tuple[str, float], ...] = (
    ("911/NO VOICE", 10.0), ("911/NO  VOICE", 1.5), ("911/No Voice", 0.5),
    ("DISORDERLY", 6.0), ("Disorderly", 0.4), ("TRAFFIC STOP", 8.0), ("Traffic Stop ", 0.4),
    ("COMMON ASSAULT", 3.0), ("COMMON ASSUALT", 0.1), ("AUTO ACCIDENT", 3.5), ("AUTO ACC/INJURY", 0.4),
    ("SILENT ALARM", 2.5), ("AUDIBLE ALARM", 2.0), ("HOLDUP ALARM", 0.2),
    ("LARCENY", 2.5), ("LARCENY F/AUTO", 1.0), ("LARCENY F/ AUTO", 0.1), ("BURGLARY", 1.2),
    ("NARCOTICSOutside", 2.0), ("NARCOTICSInside", 0.6), ("narcotics inside", 0.1), ("NARCOTICS", 0.6),
    ("FAMILY DISTURB", 3.5), ("SUSPICIOUS PERS", 2.5), ("SUSPICIOUS PERSON", 0.4),
    ("HIT AND RUN", 1.3), ("INVESTIGATE", 2.5), ("CHECK WELL-BEING", 2.0), ("CHECK WELL BEING", 0.3),
    ("NOISE COMPLAINT", 1.0), ("LOUD MUSIC", 1.2), ("PARKING COMPLAINT", 2.5), ("AUTO THEFT", 1.0),
    ("DESTRUCT PROPTY", 1.3), ("DISCHRG FIREARM", 0.8), ("SHOOTING", 0.15), ("AGGRAV ASSAULT", 0.6),
    ("ROBBERY ARMED", 0.3), ("ROBBERY UNARMED", 0.2), ("ROBBERY COMMERCIAL", 0.1), ("CARJACKING", 0.1),
    ("SICK CASE", 1.0), ("BEHAVIOR CRISIS", 0.8), ("MENTAL CASE", 0.2), ("BUSINESS CHECK", 6.0),
    ("FOOT PATROL", 5.0), ("DIRECTED PATROL", 3.0), ("CALL FOR SERVICE", 1.5), ("OTHER", 2.0),
    ("SEE TEXT", 1.0), ("TOWED VEHICLE", 0.8), ("REPO", 0.5), ("SUSPICIOUS AUTO", 0.8),
    ("JUVENILE DISTURB", 0.6), ("ARMED PERSON", 0.4), ("LOST PROPERTY", 0.2), ("RECOVERED VEHICLE", 0.4),
    ("SEX OFFENSE", 0.1), ("RAPE", 0.05), ("INDECENT EXPOSURE", 0.05), ("FIRE", 0.3),
    ("TRESPASSING", 0.6), ("PROSTITUTION", 0.05), ("DOG BITE", 0.05), ("ANIMAL COMPLAINT", 0.2),
    ("WARRANT SERVICE", 0.5), ("EMERGENCY PETITION", 0.2), ("HOMELESS", 0.2), ("ABANDONED VEHICLE", 0.6),
    ("PROTECTIVE ORDER", 0.3), ("DUI", 0.2), ("RECKLESS DRIVING", 0.3), ("MISSING PERSON", 0.2),
    # long tail no mapping covers (about 1% of calls)
    ("SEE ATTACHED", 0.3), ("10-54", 0.2), ("XFER", 0.2), ("UNK", 0.15), ("ASSIST", 0.15),
    ("CODE 7", 0.05), ("TEST", 0.03),
)

# Overdose calls are added on top of the mix, concentrated by neighborhood and rising by year.
OVERDOSE_VARIANTS: tuple[tuple[str, float], ...] = (
    ("OD", 0.45), ("OVERDOSE", 0.4), ("Overdose ", 0.1), ("OD/ OVERDOSE", 0.05),
)

PRIORITY_MIX: tuple[tuple[str, float], ...] = (
    ("Non-Emergency", 25.0), ("Low", 25.0), ("Medium", 30.0), ("High", 15.0),
    ("Emergency", 2.0), ("Out of Service", 2.5), ("", 0.5),
)

STREETS: tuple[str, ...] = (
    "N CAROLINE ST", "W NORTH AVE", "E NORTH AVE", "PENNSYLVANIA AVE", "W BALTIMORE ST", "E MONUMENT ST",
    "GREENMOUNT AVE", "HARFORD RD", "BELAIR RD", "EDMONDSON AVE", "FREDERICK AVE", "W FAYETTE ST",
    "E FAYETTE ST", "N CHARLES ST", "S CHARLES ST", "YORK RD", "REISTERSTOWN RD", "LIBERTY HEIGHTS AVE",
    "PARK HEIGHTS AVE", "E PRATT ST", "W PRATT ST", "EASTERN AVE", "WASHINGTON BLVD", "HOLLINS FERRY RD",
    "ERDMAN AVE", "N AVE", "DRUID HILL AVE", "W LAFAYETTE AVE", "N FULTON AVE", "S MONROE ST",
)
