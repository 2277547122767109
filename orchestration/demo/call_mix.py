"""The raw `description` mix of the demo 911 calls, as dispatchers type it.

The ten commonest descriptions carry their real counts over 2,799,916 calls of 2015-2018 (about
half of all calls), spelled exactly as the feed spells them. The rest is a long tail of real
descriptions (from the feed's published samples and public analysis code of it), each with the
category a reader gives it (`TRUTH`), sent in the canonical spelling most of the time and
otherwise in the ways the real feed mangles text (`variants`): the old CAD's 16-character cut,
`*` and `**` decorations, doubled spaces, title and lower case, words run together, real typos.
A small share is noise no reader could classify (`P`, `7C`). The demo thereby measures the
classifier (dbt seeds call_description_spellings and call_type_rules), which this module never
reads: each demo spelling's expected category is `TRUTH`.
"""

from __future__ import annotations

# (spelling, calls over 2015-2018) from the public count of the feed's descriptions
TOP_TEN: tuple[tuple[str, int], ...] = (
    ("911/NO  VOICE", 457_475),
    ("DISORDERLY", 238_913),
    ("Traffic Stop", 167_911),
    ("COMMON ASSAULT", 119_659),
    ("AUTO ACCIDENT", 109_821),
    ("NARCOTICSOutside", 95_939),
    ("SILENT ALARM", 78_706),
    ("FAMILY DISTURB", 68_354),
    ("Repairs/Service", 67_050),
    ("OTHER", 61_879),
)
TOP_TEN_CATEGORY = {
    "911/NO  VOICE": "administrative",
    "DISORDERLY": "disorder",
    "Traffic Stop": "traffic",
    "COMMON ASSAULT": "violent",
    "AUTO ACCIDENT": "traffic",
    "NARCOTICSOutside": "drugs",
    "SILENT ALARM": "alarm",
    "FAMILY DISTURB": "domestic",
    "Repairs/Service": "administrative",
    "OTHER": "other",
}
ALL_CALLS_2015_2018 = 2_799_916

# (canonical spelling, relative weight in the tail, category a reader gives it)
TAIL: tuple[tuple[str, float, str], ...] = (
    ("BUSINESS CHECK", 40, "administrative"),
    ("FOOT PATROL", 35, "administrative"),
    ("INVESTIGATE", 30, "other"),
    ("SUSPICIOUS PERSON", 25, "other"),
    ("LARCENY", 25, "property"),
    ("BURGLARY", 22, "property"),
    ("HIT AND RUN", 20, "traffic"),
    ("CHECK WELL BEING", 20, "administrative"),
    ("DESTRUCT PROPTY", 17, "property"),
    ("AUDIBLE ALARM", 15, "alarm"),
    ("PRKG COMPLAINT", 15, "traffic"),
    ("AUTO THEFT", 12, "property"),
    ("LARCENY F/AUTO", 12, "property"),
    ("SEE TEXT", 12, "other"),
    ("DISCHRG FIREARM", 10, "violent"),
    ("LOUD MUSIC", 10, "disorder"),
    ("SICK CASE", 10, "medical"),
    ("911/HANGUP", 10, "administrative"),
    ("AGGRAV ASSAULT", 9, "violent"),
    ("ARMED PERSON", 8, "violent"),
    ("AUTO ACC/INJURY", 8, "traffic"),
    ("BEHAVIOR CRISIS", 7, "medical"),
    ("NARCOTICS INSIDE", 6, "drugs"),
    ("JUV DISTURBANCE", 6, "disorder"),
    ("TOWED VEHICLE", 6, "traffic"),
    ("ROBBERY ARMED", 5, "violent"),
    ("TRESPASSING", 5, "disorder"),
    ("FIELD INTERVIEW", 5, "administrative"),
    ("ROBBERY UNARMED", 4, "violent"),
    ("NARCOTICS ONVIEW", 4, "drugs"),
    ("INTOXICATED PERSON", 4, "disorder"),
    ("PROTECTIVE ORDER", 4, "domestic"),
    ("WANTED ON WARRANT", 4, "administrative"),
    ("FOLLOW UP", 4, "administrative"),
    ("UNKNOWN TROUBLE", 4, "other"),
    ("MISSING PERSON", 4, "other"),
    ("ASSAULT BY THREAT", 3, "violent"),
    ("BY THREAT", 2, "violent"),
    ("STREET DISTURB", 3, "disorder"),
    ("PRIVATE TOW", 3, "traffic"),
    ("DISABLED VEH", 3, "traffic"),
    ("INJURED PERSON", 3, "medical"),
    ("WARRANT SERVICE", 3, "administrative"),
    ("ESCORT", 3, "administrative"),
    ("TRANSPORT", 3, "administrative"),
    ("INV STOP", 3, "administrative"),
    ("SUBJECT STOP", 3, "administrative"),
    ("RECOVERED VEH", 3, "other"),
    ("SHOOTING", 2, "violent"),
    ("LYING IN STREET", 2, "disorder"),
    ("STREET OBSTRUCT", 2, "disorder"),
    ("TRAFFIC CONTROL", 2, "traffic"),
    ("ABANDONED VEHICLE", 2, "traffic"),
    ("HOLDUP ALARM", 2, "alarm"),
    ("MENTAL CASE", 2, "medical"),
    ("EXPARTE", 2, "domestic"),
    ("BANK CHECK", 2, "administrative"),
    ("POLICE INFO", 2, "administrative"),
    ("FALSE PRETENSE", 2, "property"),
    ("LOST PROPERTY", 2, "other"),
    ("FIRE", 2, "other"),
    ("HANDGUN VIOLATION", 1.5, "violent"),
    ("CAR JACKING", 1.5, "violent"),
    ("SERVE PEACE ORDER", 1.5, "domestic"),
    ("CUTTING", 1, "violent"),
    ("PROSTITUTION", 1, "disorder"),
    ("VEHICLE DISTURB", 1, "disorder"),
    ("ANIMAL DISTURB", 1, "other"),
    ("DWI", 1, "traffic"),
    ("REPO", 1, "administrative"),
    ("LAB REQUEST", 1, "administrative"),
    ("NOTIFY", 1, "administrative"),
    ("COURT", 1, "administrative"),
    ("SEARCH&SEIZURE", 1, "administrative"),
    ("TROUBLE UNKNOWN", 1, "other"),
    ("RECOVER PROPERTY", 1, "other"),
    ("PROWLER", 1, "property"),
    ("UNAUTHORIZED USE", 1, "property"),
    ("EP", 1, "medical"),
    ("ATTEMPT BURGLARY", 0.5, "property"),
    ("LARCENY A/TRUST", 0.5, "property"),
    ("GAMBLING", 0.5, "disorder"),
    ("ProstitutionComp", 0.5, "disorder"),
    ("CDS", 0.5, "drugs"),
    ("AED NONBREATHING", 0.5, "medical"),
    ("DOG BITE", 0.5, "other"),
    ("CAR FIRE", 0.5, "other"),
    ("ARSON", 0.3, "property"),
    ("RAPE", 0.3, "violent"),
)

# descriptions no reader could classify (codes, fragments), as the feed sends them
NOISE: tuple[str, ...] = ("P", "J", "Y", "N", "O", "56", "7C", "6J", "5G", "ANON", "IN PERSON", "VIOLATION", "AUTO")
NOISE_SHARE = 0.004
# share of each description's calls sent in a mangled spelling rather than the canonical one
VARIANT_SHARE = 0.2
# share of each top-ten description's calls sent in a mangled spelling (taken from the tail)
TOP_TEN_VARIANT_SHARE = 0.02
CAD_FIELD_CHARS = 16
# misspellings the real feed carries, by the word they stand for
TYPOS: dict[str, tuple[str, ...]] = {
    "LARCENY": ("LARCENCY",),
    "THREAT": ("THEAT", "TYHREAT"),
    "ESCORT": ("ESCOURT", "ECORT"),
    "ATTEMPT": ("ATTMPT", "ATTEMP"),
    "ASSAULT": ("ASSUALT",),
    "BURGLARY": ("BURGLARPY",),
    "TRESPASSING": ("TRESSPASSING",),
    "BEHAVIOR": ("BEHAVIORL",),
    "DISTURBANCE": ("DISTURBNCE",),
}


def variants(canonical: str) -> list[str]:
    """The ways the feed mangles a description, in a fixed order, without the canonical one."""
    words = canonical.split(" ")
    out = [
        canonical[:CAD_FIELD_CHARS],  # the old CAD field's cut
        ("*" + canonical)[:CAD_FIELD_CHARS],
        canonical.title(),
        canonical.lower(),
    ]
    if len(words) > 1:
        out.append(canonical.replace(" ", "  ", 1))  # a doubled inner space
        out.append(words[0].upper() + "".join(w.title() for w in words[1:]))  # NARCOTICSOutside
        out.append("".join(w.title() for w in words))  # ProstitutionComp
    else:
        out.append("**" + canonical + "**")
    for i, word in enumerate(words):
        for typo in TYPOS.get(word, ()):
            out.append(" ".join(words[:i] + [typo] + words[i + 1 :])[:CAD_FIELD_CHARS])
    seen: list[str] = []
    for v in out:
        if v != canonical and v not in seen:
            seen.append(v)
    return seen


def _build() -> tuple[tuple[tuple[str, float], ...], dict[str, str]]:
    """Every spelling with its share of calls, and the category each spelling stands for."""
    truth: dict[str, str] = {}
    weights: dict[str, float] = {}

    def add(spelling: str, share: float, category: str) -> None:
        if truth.setdefault(spelling, category) != category:
            raise ValueError(f"demo spelling {spelling!r} stands for two categories")
        weights[spelling] = weights.get(spelling, 0.0) + share

    top_share = sum(n for _, n in TOP_TEN) / ALL_CALLS_2015_2018
    tail_budget = 1.0 - top_share - NOISE_SHARE
    for spelling, n in TOP_TEN:
        add(spelling, n / ALL_CALLS_2015_2018, TOP_TEN_CATEGORY[spelling])
    top_variant_budget = TOP_TEN_VARIANT_SHARE * top_share
    tail_budget -= top_variant_budget
    for spelling, n in TOP_TEN:
        canonical = " ".join(spelling.split()).upper()
        forms = [v for v in [canonical, *variants(canonical)] if v != spelling]
        for v in forms:
            add(v, top_variant_budget * n / sum(m for _, m in TOP_TEN) / len(forms), TOP_TEN_CATEGORY[spelling])
    total_w = sum(w for _, w, _ in TAIL)
    for canonical, w, category in TAIL:
        share = tail_budget * w / total_w
        if len(canonical) > CAD_FIELD_CHARS:  # the old CAD sent the cut text, the newer one the whole
            add(canonical[:CAD_FIELD_CHARS], share * (1 - VARIANT_SHARE) / 2, category)
            add(canonical, share * (1 - VARIANT_SHARE) / 2, category)
        else:
            add(canonical, share * (1 - VARIANT_SHARE), category)
        forms = [v for v in variants(canonical) if v != canonical[:CAD_FIELD_CHARS]]
        for v in forms:
            add(v, share * VARIANT_SHARE / len(forms), category)
    for spelling in NOISE:
        add(spelling, NOISE_SHARE / len(NOISE), "Unclassified")
    return tuple(weights.items()), truth


DESCRIPTION_MIX, TRUTH = _build()

# Overdose calls are added on top of the mix, concentrated by neighborhood and rising by year.
OVERDOSE_VARIANTS: tuple[tuple[str, float], ...] = (
    ("OD", 0.45),
    ("OVERDOSE", 0.4),
    ("Overdose ", 0.1),
    ("OD/ OVERDOSE", 0.05),
)
TRUTH.update({spelling: "overdose" for spelling, _ in OVERDOSE_VARIANTS})

PRIORITY_MIX: tuple[tuple[str, float], ...] = (
    ("Non-Emergency", 25.0),
    ("Low", 25.0),
    ("Medium", 30.0),
    ("High", 15.0),
    ("Emergency", 2.0),
    ("Out of Service", 2.5),
    ("", 0.5),
)

STREETS: tuple[str, ...] = (
    "N CAROLINE ST",
    "W NORTH AVE",
    "E NORTH AVE",
    "PENNSYLVANIA AVE",
    "W BALTIMORE ST",
    "E MONUMENT ST",
    "GREENMOUNT AVE",
    "HARFORD RD",
    "BELAIR RD",
    "EDMONDSON AVE",
    "FREDERICK AVE",
    "W FAYETTE ST",
    "E FAYETTE ST",
    "N CHARLES ST",
    "S CHARLES ST",
    "YORK RD",
    "REISTERSTOWN RD",
    "LIBERTY HEIGHTS AVE",
    "PARK HEIGHTS AVE",
    "E PRATT ST",
    "W PRATT ST",
    "EASTERN AVE",
    "WASHINGTON BLVD",
    "HOLLINS FERRY RD",
    "ERDMAN AVE",
    "N AVE",
    "DRUID HILL AVE",
    "W LAFAYETTE AVE",
    "N FULTON AVE",
    "S MONROE ST",
)
