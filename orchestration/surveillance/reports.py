"""The daily surveillance reports BCHD e-mails today, as self-contained HTML (and PDF where
Debian's chromium can print them).

- **Outreach report**: no patient-level point or demographic. Per cluster: its days, observed
  cases, its circle's 30-day total, radius in feet and metres, CSAs and neighborhoods, and a map
  of circles over the CSA polygons.
- **Epidemiology report**: the cluster table (observed, expected, O/E, p, recurrence interval),
  cluster cases against all cases by age band and sex (cells under `MIN_CELL` suppressed), each
  cluster's CSAs, the citywide 30-day series and the EARS alerts.

When nothing is significant, each report says so in plain words. Files:
`<REPORTS_DIR>/<analysis day>/outreach.html` and `epidemiology.html` (`report_paths`), which the
spike notification names. Everything is computed by SQL in the working database; the patient
rows are read only to count them, never written out.
"""

from __future__ import annotations

import html
import math
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd
from shapely import wkt

MIN_CELL = 5  # counts below this are shown as "<5" (small-cell suppression)
HIDDEN = "x"  # a larger count hidden so that a small one cannot be worked out from it
FEET_PER_METRE = 3.280839895
CHROMIUM = Path("/usr/bin/chromium")


@dataclass(frozen=True)
class ReportPaths:
    outreach: Path
    epidemiology: Path


def report_paths(folder: Path, day: date) -> ReportPaths:
    """Where the reports of an analysis day are written (the notification names them too)."""
    base = folder / day.isoformat()
    return ReportPaths(base / "outreach.html", base / "epidemiology.html")


def protected(people: pd.DataFrame, columns: tuple[str, str] = ("cluster_cases", "all_cases")) -> pd.DataFrame:
    """The demographic table as shown: small cells as "<MIN_CELL", and the cells they could be
    worked out from as HIDDEN.

    Primary: counts from 1 to MIN_CELL - 1. Complementary: each column's total of a dimension can
    be known from elsewhere in the report (clusters' observed counts, the citywide series), so a
    column of a dimension never hides exactly one cell (the smallest other cell is hidden too);
    and the cases outside clusters (all minus cluster) of a row are never a small count that both
    shown cells would give away (the cluster cell is hidden). Rules repeat until none applies.
    """
    cluster, total = columns
    hidden = pd.DataFrame({c: people[c].between(1, MIN_CELL - 1) for c in columns}, index=people.index)
    changed = True
    while changed:
        changed = False
        outside = people[total] - people[cluster]
        gives_away = outside.between(1, MIN_CELL - 1) & ~hidden[cluster] & ~hidden[total]
        if gives_away.any():
            hidden.loc[gives_away, cluster] = True
            changed = True
        for _, rows in people.groupby("dimension").groups.items():
            for column in columns:
                alone = hidden.loc[rows, column]
                if alone.sum() == 1 and (~alone).any():
                    partner = people.loc[rows][~alone][column].idxmin()
                    hidden.loc[partner, column] = True
                    changed = True
    shown = people.copy()
    for column in columns:
        shown[column] = [
            f"<{MIN_CELL}" if 0 < value < MIN_CELL else HIDDEN if hide else f"{int(value):,}"
            for value, hide in zip(people[column], hidden[column], strict=True)
        ]
    return shown


# --- what the reports show, by SQL -------------------------------------------------------


def day_clusters(conn, day: date, report_p: float) -> pd.DataFrame:
    """The day's reported clusters, with each circle's 30-day total (cases at its locations over
    the study period)."""
    return conn.execute(
        """
        with members as (
            select l.rank, l.location from restricted.overdose_cluster_locations l where l.analysis_date = ?
        ),
        cases as (
            select round(latitude, 4)::varchar || ',' || round(longitude, 4)::varchar as location
            from restricted.fct_naloxone_administrations
            where is_nonfatal_overdose and incident_date between cast(? as date) - 29 and cast(? as date)
        ),
        totals as (
            select m.rank, count(*) as thirty_day_total from members m join cases c using (location) group by 1
        )
        select c.*, coalesce(t.thirty_day_total, 0) as thirty_day_total
        from marts.mart_overdose_clusters c left join totals t using (rank)
        where c.analysis_date = ? and c.p_value <= ?
        order by c.rank""",
        [day, day, day, day, report_p],
    ).df()


def demographics(conn, day: date, report_p: float) -> pd.DataFrame:
    """Age band and sex of the reported clusters' cases (in their windows) against all cases of
    the 30 days: counts, later suppressed below MIN_CELL."""
    return conn.execute(
        """
        with members as (
            select l.rank, l.location, c.start_date, c.end_date
            from restricted.overdose_cluster_locations l
            join marts.mart_overdose_clusters c using (analysis_date, rank)
            where l.analysis_date = ? and c.p_value <= ?
        ),
        cases as (
            select administration_id,
                   round(latitude, 4)::varchar || ',' || round(longitude, 4)::varchar as location,
                   incident_date, age_band,
                   -- the report's own categories: a free-text value of the EMS file never reaches it
                   case when sex in ('Female', 'Male') then sex else 'Other or unknown' end as sex
            from restricted.fct_naloxone_administrations
            where is_nonfatal_overdose and incident_date between cast(? as date) - 29 and cast(? as date)
        ),
        in_clusters as (
            -- a case counts once even where two clusters' circles reach it
            select distinct c.* from cases c join members m
              on c.location = m.location and c.incident_date between m.start_date and m.end_date
        )
        select 'age band' as dimension, age_band as value,
               (select count(*) from in_clusters i where i.age_band = a.age_band) as cluster_cases,
               count(*) as all_cases
        from cases a group by age_band
        union all
        select 'sex', sex, (select count(*) from in_clusters i where i.sex = a.sex), count(*)
        from cases a group by sex
        order by 1, 2""",
        [day, report_p, day, day],
    ).df()


def citywide_series(conn, day: date) -> pd.DataFrame:
    return conn.execute(
        """select day, sum(nonfatal_overdoses) as nonfatal_overdoses from marts.mart_overdose_daily
           where day between cast(? as date) - 29 and cast(? as date) group by 1 order by 1""",
        [day, day],
    ).df()


def day_alerts(conn, day: date) -> pd.DataFrame:
    return conn.execute(
        """select area, method, count, round(baseline_mean, 2) as baseline_mean, round(statistic, 2) as statistic,
                  threshold from marts.mart_overdose_alerts where analysis_date = ? and is_alert
           order by area_type, area, method""",
        [day],
    ).df()


def csa_polygons(conn) -> pd.DataFrame:
    return conn.execute("select name, geometry_wkt from raw.boundaries where layer = 'csa' order by name").df()


# --- HTML ------------------------------------------------------------------------------------

STYLE = """
body { font-family: sans-serif; margin: 24px; color: #222; max-width: 1000px; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; }
th { background: #f2f2f2; }
.none { font-size: 16px; padding: 12px; background: #eef6ee; border: 1px solid #b5d6b5; }
.note { color: #666; font-size: 12px; }
"""


def _page(title: str, body: str) -> str:
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )


def _table(frame: pd.DataFrame, table_id: str) -> str:
    head = "".join(f"<th>{html.escape(str(c).replace('_', ' '))}</th>" for c in frame.columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape('' if pd.isna(v) else str(v))}</td>" for v in row) + "</tr>"
        for row in frame.itertuples(index=False)
    )
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


def svg_map(polygons: pd.DataFrame, clusters: pd.DataFrame, width: int = 640) -> str:
    """CSA outlines and cluster circles as inline SVG (equirectangular, scaled by cos(latitude))."""
    shapes = [(r.name, wkt.loads(r.geometry_wkt)) for r in polygons.itertuples()]
    if not shapes:
        return ""
    bounds = [s.bounds for _, s in shapes]
    west, south = min(b[0] for b in bounds), min(b[1] for b in bounds)
    east, north = max(b[2] for b in bounds), max(b[3] for b in bounds)
    k = math.cos(math.radians((south + north) / 2))
    scale = width / ((east - west) * k)
    height = int((north - south) * scale) + 1

    def xy(lon: float, lat: float) -> str:
        return f"{(lon - west) * k * scale:.1f},{(north - lat) * scale:.1f}"

    parts = []
    for name, shape in shapes:
        for polygon in getattr(shape, "geoms", [shape]):
            points = " ".join(xy(x, y) for x, y in polygon.exterior.coords)
            parts.append(
                f'<polygon points="{points}" fill="#f4f4f4" stroke="#888" stroke-width="0.6">'
                f"<title>{html.escape(name)}</title></polygon>"
            )
    for c in clusters.itertuples():
        cx, cy = xy(c.center_longitude, c.center_latitude).split(",")
        r = max(c.radius_km * 1000 / 111_320 * scale, 3)
        colour = "#c62828" if c.is_spike else "#ef6c00"
        parts.append(
            f'<circle cx="{cx}" cy="{cy}" r="{r:.1f}" fill="{colour}" fill-opacity="0.3" stroke="{colour}" '
            f'stroke-width="2"><title>cluster {c.rank}</title></circle>'
            f'<text x="{cx}" y="{cy}" font-size="12" text-anchor="middle">{c.rank}</text>'
        )
    # inline SVG in HTML5: no namespace, nothing that names another host
    return f'<svg width="{width}" height="{height}">{"".join(parts)}</svg>'


def _nothing(day: date, report_p: float) -> str:
    return (
        f'<p class="none" id="no-clusters">No cluster of non-fatal overdoses was found on {day}: no space-time '
        f"cluster reached p &le; {report_p:g} in the 30 days ending that day.</p>"
    )


def outreach_html(day: date, clusters: pd.DataFrame, polygons: pd.DataFrame, report_p: float) -> str:
    if clusters.empty:
        body = _nothing(day, report_p)
    else:
        rows = pd.DataFrame(
            {
                "cluster": clusters["rank"],
                "status": clusters["status"],
                "start": clusters["start_date"].astype(str).str[:10],
                "end": clusters["end_date"].astype(str).str[:10],
                "observed": clusters["observed"],
                "30-day total": clusters["thirty_day_total"],
                "radius (ft)": (clusters["radius_km"] * 1000 * FEET_PER_METRE).round().astype(int),
                "radius (m)": (clusters["radius_km"] * 1000).round().astype(int),
                "CSAs": clusters["csas"],
                "neighborhoods": clusters["neighborhoods"],
                "spike": clusters["is_spike"].map({True: "yes", False: "no"}),
            }
        )
        body = (
            f"<p>{len(clusters)} cluster(s) of non-fatal overdoses on {day}. Circles show where to go; no patient "
            "location or detail is in this report.</p>" + _table(rows, "clusters") + svg_map(polygons, clusters)
        )
    return _page(f"Overdose outreach report, {day}", body)


def epidemiology_html(
    day: date,
    clusters: pd.DataFrame,
    people: pd.DataFrame,
    series: pd.DataFrame,
    alerts: pd.DataFrame,
    report_p: float,
) -> str:
    parts = []
    if clusters.empty:
        parts.append(_nothing(day, report_p))
    else:
        table = clusters[
            [
                "rank",
                "status",
                "start_date",
                "end_date",
                "observed",
                "expected",
                "observed_over_expected",
                "p_value",
                "recurrence_interval_days",
                "csas",
            ]
        ].copy()
        for column in ("start_date", "end_date"):
            table[column] = table[column].astype(str).str[:10]
        table[["expected", "observed_over_expected"]] = table[["expected", "observed_over_expected"]].round(2)
        table["recurrence_interval_days"] = table["recurrence_interval_days"].round(1)
        parts.append("<h2>Clusters</h2>" + _table(table.rename(columns={"csas": "CSA overlap"}), "clusters"))
        parts.append(
            "<h2>Cluster cases against all cases (30 days)</h2>"
            + _table(protected(people), "demographics")
            + f'<p class="note">Counts from 1 to {MIN_CELL - 1} are shown as &lt;{MIN_CELL}; {HIDDEN} hides a '
            "count they could be worked out from (another cell of the same column, whose total the report "
            "gives elsewhere, or a cluster count whose difference from all cases would be small).</p>"
        )
    parts.append("<h2>Non-fatal overdoses citywide, last 30 days</h2>")
    parts.append(_table(series.assign(day=series["day"].astype(str).str[:10]), "series"))
    parts.append("<h2>EARS alerts</h2>")
    parts.append(_table(alerts, "alerts") if len(alerts) else f'<p id="no-alerts">No EARS alert on {day}.</p>')
    return _page(f"Overdose epidemiology report, {day}", "".join(parts))


def _profile_folder() -> Path:
    """A new, empty Chromium profile folder, in memory where the system has /dev/shm."""
    shm = Path("/dev/shm")
    return Path(tempfile.mkdtemp(prefix="warehouse-chromium-", dir=shm if shm.is_dir() else None))


def print_pdfs(html_paths: list[Path]) -> dict[Path, Path | None]:
    """Each report as PDF by Debian's chromium, where it is installed (else None), the browsers
    side by side: each spends most of its second starting, on one core of two.

    Each browser gets a throwaway profile folder, removed afterwards, rather than the user's
    default profile, which the two browsers shared: the pair printed in 1.13 s instead of 1.6 s
    (six alternating pairs), and a service account without a writable home still prints. However
    it ends (a browser that cannot start, a timeout, the run being stopped), no browser is left
    running and no profile folder is left behind."""
    if not CHROMIUM.exists():
        return dict.fromkeys(html_paths)
    printing: dict[Path, tuple[Path, subprocess.Popen]] = {}
    profiles: list[Path] = []
    try:
        for html_path in html_paths:
            pdf = html_path.with_suffix(".pdf")
            profiles.append(_profile_folder())
            command = [
                str(CHROMIUM),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--no-first-run",
                f"--user-data-dir={profiles[-1]}",
                f"--print-to-pdf={pdf}",
                "--no-pdf-header-footer",
                html_path.resolve().as_uri(),
            ]
            printing[html_path] = (pdf, subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        printed: dict[Path, Path | None] = {}
        for html_path, (pdf, process) in printing.items():
            try:
                done = process.wait(timeout=120) == 0
            except subprocess.TimeoutExpired:
                done = False  # stopped below
            printed[html_path] = pdf if done and pdf.exists() else None
        return printed
    finally:
        for _, process in printing.values():
            if process.poll() is None:
                process.kill()
                process.wait()
        for profile in profiles:
            shutil.rmtree(profile, ignore_errors=True)


def write_reports(
    conn, day: date, folder: Path, report_p: float, pdf: bool = True, polygons: pd.DataFrame | None = None
) -> dict[str, str]:
    """Write the day's two reports (and PDFs where possible); returns what was written.

    `polygons` (`csa_polygons`) may be read once by a caller writing many days' reports."""
    paths = report_paths(folder, day)
    paths.outreach.parent.mkdir(parents=True, exist_ok=True)
    clusters = day_clusters(conn, day, report_p)
    polygons = csa_polygons(conn) if polygons is None else polygons
    paths.outreach.write_text(outreach_html(day, clusters, polygons, report_p), encoding="utf-8")
    paths.epidemiology.write_text(
        epidemiology_html(
            day,
            clusters,
            demographics(conn, day, report_p),
            citywide_series(conn, day),
            day_alerts(conn, day),
            report_p,
        ),
        encoding="utf-8",
    )
    written = {"outreach": str(paths.outreach), "epidemiology": str(paths.epidemiology), "clusters": str(len(clusters))}
    if pdf:
        printed = print_pdfs([paths.outreach, paths.epidemiology])
        for name, path in (("outreach_pdf", paths.outreach), ("epidemiology_pdf", paths.epidemiology)):
            if printed[path] is not None:
                written[name] = str(printed[path])
    return written
