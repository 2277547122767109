"""Baltimore's surveillance policy: what is scanned and what counts as a spike, stated once.

The scan's own parameters are `ScanParameters` (scan.py) and EARS's `EarsParameters` (ears.py);
these are the rules around them. The asset's config and the CLI derive their defaults from
these three dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReportingPolicy:
    study_days: int = 30  # the study period, ending on the analysis day
    spike_p: float = 0.05  # a cluster with p below this is a spike (check warns, sensor notifies)
    report_p: float = 0.4  # clusters with p at or below this are reported for outreach


POLICY = ReportingPolicy()
