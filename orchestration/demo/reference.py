"""Hand-written geography reference for the demo: Baltimore's 55 Community Statistical Areas.

Facts, written out by hand: CSA names in their canonical (BNIA/BCHD) spelling, an approximate
interior point, the 2010 census population and the ZIP code that covers most of the CSA. The relative call and overdose
factors are demo assumptions (the overdose factor concentrates overdoses in West Baltimore's
21217 and the other areas analysts report as most affected).

Demo neighborhoods are Baltimore's 278 real neighborhoods (demo/neighborhoods.py), each in the
CSA the crosswalk gives it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from orchestration.demo.neighborhoods import NEIGHBORHOODS
from orchestration.sources.geography import POLICE_DISTRICTS


@dataclass(frozen=True)
class Csa:
    name: str
    latitude: float
    longitude: float
    population_2010: int
    zip_code: str
    call_factor: float = 1.0
    overdose_factor: float = 1.0


CSAS: tuple[Csa, ...] = (
    Csa("Allendale/Irvington/S. Hilton", 39.2831, -76.6765, 16217, "21229", 1.1, 1.3),
    Csa("Beechfield/Ten Hills/West Hills", 39.2875, -76.7033, 12264, "21229", 0.7, 0.4),
    Csa("Belair-Edison", 39.3236, -76.5746, 17416, "21213", 1.1, 1.0),
    Csa("Brooklyn/Curtis Bay/Hawkins Point", 39.2324, -76.5839, 14243, "21225", 1.2, 2.2),
    Csa("Canton", 39.2843, -76.5820, 8100, "21224", 0.8, 0.3),
    Csa("Cedonia/Frankford", 39.3357, -76.5425, 23557, "21206", 0.9, 0.6),
    Csa("Cherry Hill", 39.2495, -76.6225, 8202, "21225", 1.4, 1.2),
    Csa("Chinquapin Park/Belvedere", 39.3630, -76.6039, 7756, "21239", 0.6, 0.3),
    Csa("Claremont/Armistead", 39.3155, -76.5443, 8231, "21205", 1.0, 0.8),
    Csa("Clifton-Berea", 39.3098, -76.5808, 9874, "21213", 1.6, 2.0),
    Csa("Cross-Country/Cheswolde", 39.3639, -76.6877, 13034, "21209", 0.5, 0.2),
    Csa("Dickeyville/Franklintown", 39.3107, -76.7006, 4101, "21207", 0.6, 0.3),
    Csa("Dorchester/Ashburton", 39.3322, -76.6779, 11786, "21215", 0.9, 0.8),
    Csa("Downtown/Seton Hill", 39.2939, -76.6191, 6446, "21201", 3.0, 1.8),
    Csa("Edmondson Village", 39.3000, -76.6836, 7900, "21229", 1.2, 0.9),
    Csa("Fells Point", 39.2852, -76.5931, 9039, "21231", 1.5, 0.8),
    Csa("Forest Park/Walbrook", 39.3146, -76.6830, 9849, "21207", 1.1, 1.0),
    Csa("Glen-Fallstaff", 39.3560, -76.6999, 14914, "21215", 0.8, 0.5),
    Csa("Greater Charles Village/Barclay", 39.3237, -76.6148, 16391, "21218", 1.0, 1.0),
    Csa("Greater Govans", 39.3448, -76.6046, 10681, "21212", 1.0, 0.9),
    Csa("Greater Mondawmin", 39.3184, -76.6635, 9322, "21216", 1.3, 1.4),
    Csa("Greater Roland Park/Poplar Hill", 39.3542, -76.6388, 7377, "21210", 0.4, 0.1),
    Csa("Greater Rosemont", 39.3042, -76.6623, 19259, "21216", 1.4, 1.7),
    Csa("Greenmount East", 39.3065, -76.5985, 8184, "21213", 1.8, 2.4),
    Csa("Hamilton", 39.3504, -76.5493, 13002, "21214", 0.6, 0.4),
    Csa("Harbor East/Little Italy", 39.2881, -76.5993, 5407, "21202", 1.6, 1.2),
    Csa("Harford/Echodale", 39.3610, -76.5635, 16839, "21214", 0.7, 0.4),
    Csa("Highlandtown", 39.2857, -76.5669, 7250, "21224", 1.1, 1.3),
    Csa("Howard Park/West Arlington", 39.3362, -76.7003, 10873, "21207", 0.8, 0.5),
    Csa("Inner Harbor/Federal Hill", 39.2786, -76.6125, 12855, "21230", 1.4, 0.7),
    Csa("Lauraville", 39.3401, -76.5661, 12273, "21214", 0.7, 0.4),
    Csa("Loch Raven", 39.3629, -76.5856, 15311, "21239", 0.8, 0.5),
    Csa("Madison/East End", 39.3000, -76.5803, 7781, "21205", 1.6, 2.3),
    Csa("Medfield/Hampden/Woodberry/Remington", 39.3282, -76.6334, 17388, "21211", 0.8, 0.6),
    Csa("Midtown", 39.3025, -76.6159, 15020, "21201", 1.5, 1.5),
    Csa("Midway/Coldstream", 39.3199, -76.5963, 9624, "21218", 1.6, 1.8),
    Csa("Morrell Park/Violetville", 39.2665, -76.6632, 8964, "21229", 0.8, 0.9),
    Csa("Mount Washington/Coldspring", 39.3565, -76.6573, 5168, "21209", 0.4, 0.1),
    Csa("North Baltimore/Guilford/Homeland", 39.3515, -76.6194, 17464, "21210", 0.4, 0.1),
    Csa("Northwood", 39.3413, -76.5894, 16643, "21239", 0.8, 0.5),
    Csa("Oldtown/Middle East", 39.2983, -76.5971, 10021, "21202", 1.8, 2.1),
    Csa("Orangeville/East Highlandtown", 39.2952, -76.5497, 9131, "21224", 1.0, 1.0),
    Csa("Patterson Park North & East", 39.2918, -76.5728, 14549, "21224", 1.1, 1.2),
    Csa("Penn North/Reservoir Hill", 39.3205, -76.6422, 9668, "21217", 1.7, 3.4),
    Csa("Pimlico/Arlington/Hilltop", 39.3493, -76.6735, 11816, "21215", 1.3, 1.3),
    Csa("Poppleton/The Terraces/Hollins Market", 39.2901, -76.6329, 5086, "21223", 1.6, 2.2),
    Csa("Sandtown-Winchester/Harlem Park", 39.3024, -76.6429, 14896, "21217", 2.0, 4.0),
    Csa("South Baltimore", 39.2661, -76.5997, 6406, "21230", 0.6, 0.4),
    Csa("Southeastern", 39.2620, -76.5558, 6260, "21224", 1.0, 0.8),
    Csa("Southern Park Heights", 39.3361, -76.6640, 13284, "21215", 1.5, 1.6),
    Csa("Southwest Baltimore", 39.2850, -76.6487, 17885, "21223", 1.8, 3.0),
    Csa("The Waverlies", 39.3266, -76.6018, 7753, "21218", 0.9, 0.8),
    Csa("Upton/Druid Heights", 39.3022, -76.6283, 10342, "21217", 1.8, 3.2),
    Csa("Washington Village/Pigtown", 39.2772, -76.6365, 5503, "21230", 1.4, 2.0),
    Csa("Westport/Mount Winans/Lakeland", 39.2545, -76.6461, 7119, "21230", 1.0, 1.1),
)


def neighborhood_frame() -> pd.DataFrame:
    """Demo neighborhoods in the layout of the reference: neighborhood -> CSA -> ZIP, district.

    `neighborhood` is the boundary file's name, `name_alt` its alternate (the feed's spelling
    where they differ), `feed_name` what the demo feed writes. A CSA's population is split
    across its neighborhoods by area; the call and overdose factors are the CSA's.
    """
    by_csa = {c.name: c for c in CSAS}
    frame = pd.DataFrame([n._asdict() for n in NEIGHBORHOODS])
    frame["neighborhood"] = frame["boundary_name"].fillna(frame["feed_name"])
    csa = frame["csa"].map(by_csa)
    share = frame["acres"] / frame.groupby("csa")["acres"].transform("sum")
    frame["population"] = (csa.map(lambda c: c.population_2010) * share).round().astype("int64")
    frame["zip_code"] = csa.map(lambda c: c.zip_code)
    frame["police_district_code"] = frame["district"]
    frame["police_district"] = frame["district"].map(POLICE_DISTRICTS)
    frame["call_factor"] = csa.map(lambda c: c.call_factor)
    frame["overdose_factor"] = csa.map(lambda c: c.overdose_factor)
    if frame["neighborhood"].duplicated().any():
        dupes = frame.loc[frame["neighborhood"].duplicated(), "neighborhood"].tolist()
        raise ValueError(f"demo neighborhood names must be unique, repeated: {dupes}")
    return frame[
        [
            "neighborhood",
            "name_alt",
            "feed_name",
            "csa",
            "zip_code",
            "police_district_code",
            "police_district",
            "latitude",
            "longitude",
            "population",
            "call_factor",
            "overdose_factor",
        ]
    ]


def neighborhood_weights(frame: pd.DataFrame, factor: str) -> np.ndarray:
    """Probability of each neighborhood for an event: population x the named factor."""
    w = frame["population"].to_numpy(float) * frame[factor].to_numpy(float)
    return w / w.sum()
