"""The dashboard in a real browser (Debian's chromium driven by Playwright), and a real BI client
(SQLAlchemy + duckdb-engine, as Superset connects) reading while publications swap the file.

The browser tests load each view, and the day's two reports, over the warehouse the session
built, and compare what the page shows with SQL: total calls in the range, the top ZIP, naloxone
administrations, the most likely cluster's observed count, the publication's id. They fail on
any console error and on any request leaving 127.0.0.1 (the reports: leaving the file), and save
a screenshot of each page under `test-artifacts/` (git-ignored; TEST_ARTIFACTS overrides). `make test` installs
chromium as root on Debian; where it is missing the browser test is skipped with the reason.
"""

from __future__ import annotations

import os
import threading
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from orchestration import settings
from orchestration.dashboard.process import running_dashboard

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", settings.PROJECT_ROOT / "test-artifacts"))


@pytest.fixture(scope="module")
def dashboard(built):
    """The dashboard on the session's serving database."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with running_dashboard(os.environ.copy(), log=ARTIFACTS / "dashboard-session.log") as running:
        yield running.url


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (make test installs it when run as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
            ],
        )
        yield launched
        launched.close()


def _serving(sql: str, params: list | None = None):
    with duckdb.connect(str(settings.serving_path()), read_only=True) as conn:
        return conn.execute(sql, params or []).fetchall()


def _default_range():
    """The page's default range: the last 365 days the fact holds (as the layout sets it)."""
    first, last = _serving("select min(partition_date), max(partition_date) from marts.fct_calls_for_service")[0]
    return max(first, last - timedelta(days=364)), last


def _text(page, selector: str) -> str:
    page.wait_for_function(
        "s => { const e = document.querySelector(s); return e && e.innerText.trim().length > 0 }", arg=selector
    )
    return page.inner_text(selector).strip()


def test_every_view_shows_what_sql_on_the_serving_database_gives(dashboard, browser):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors, outside = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: None if r.url.startswith(dashboard) else outside.append(r.url))
    page.goto(dashboard, wait_until="networkidle")
    start, end = _default_range()

    # 911 calls
    [(total,)] = _serving(
        "select count(*) from marts.fct_calls_for_service where partition_date between ? and ?", [start, end]
    )
    assert _text(page, "#calls-total") == f"{total:,}"
    [(top_zip, _)] = _serving(
        """select g.zip_code, count(*) as n from marts.fct_calls_for_service f join marts.dim_geography g
           using (geography_key) where f.partition_date between ? and ? and not g.is_unknown
           group by 1 order by n desc, 1 limit 1""",
        [start, end],
    )
    assert _text(page, "#top-zip") == top_zip
    [(publication_id,)] = _serving("select publication_id from meta.publication")
    assert publication_id in _text(page, "#publication")
    page.wait_for_selector("#calls-map .main-svg")
    page.screenshot(path=str(ARTIFACTS / "dashboard-calls.png"), full_page=True)

    # Overdoses
    page.get_by_text("Overdoses", exact=True).click()
    [(naloxone,)] = _serving(
        "select sum(naloxone_administrations) from marts.mart_overdose_daily where day between ? and ?", [start, end]
    )
    assert _text(page, "#naloxone-total") == f"{int(naloxone):,}"
    [(overdose_calls,)] = _serving(
        """select count(*) from marts.fct_calls_for_service f join marts.dim_call_type ct using (call_type_key)
           where ct.is_overdose and f.partition_date between ? and ?""",
        [start, end],
    )
    assert _text(page, "#overdose-calls-total") == f"{overdose_calls:,}"
    page.wait_for_selector("#outcomes-by-month .main-svg")
    page.screenshot(path=str(ARTIFACTS / "dashboard-overdoses.png"), full_page=True)

    # Neighborhood health: each CSA's calls over the chosen days, beside its indicators
    page.get_by_text("Neighborhood health", exact=True).click()
    [(first_csa, first_calls)] = _serving(
        """select p.csa, count(f.call_id) from marts.mart_csa_profile p
           left join marts.dim_geography g on g.csa = p.csa
           left join marts.fct_calls_for_service f
             on f.geography_key = g.geography_key and f.partition_date between ? and ?
           where p.population > 0 group by 1 order by 1 limit 1""",
        [start, end],
    )
    page.wait_for_selector("#health-profile")
    first_row = page.locator("#health-profile tbody tr").nth(1)  # row 0 holds the headers
    assert first_row.locator('td[data-dash-column="csa"]').inner_text().strip() == first_csa
    assert first_row.locator('td[data-dash-column="calls"]').inner_text().strip() == str(first_calls)
    page.screenshot(path=str(ARTIFACTS / "dashboard-health.png"), full_page=True)

    # Surveillance: the newest analysis day's most likely cluster
    page.get_by_text("Surveillance", exact=True).click()
    rows = _serving(
        """select observed from marts.mart_overdose_clusters
           where analysis_date = (select max(analysis_date) from marts.mart_overdose_clusters) order by rank limit 1"""
    )
    assert rows, "the session's run scans its last day: the demo has clusters"
    assert _text(page, "#top-cluster-observed") == str(rows[0][0])
    page.wait_for_selector("#clusters")
    page.screenshot(path=str(ARTIFACTS / "dashboard-surveillance.png"), full_page=True)

    assert errors == [], errors
    assert outside == [], f"requests left 127.0.0.1: {outside[:5]}"


def _republish(serving: Path, number: int) -> str:
    """A new publication, switched in as `serving/publication` switches it: the current one copied
    under a new id (its `meta.publication` says so), then the one atomic link switch."""
    import shutil

    from orchestration.assets.publish import ServingLayout

    layout = ServingLayout(serving)
    current = layout.current_folder()
    publication_id = f"{current.name[:15]}-bi-test-{number + 1}"
    building = layout.building(publication_id)
    shutil.copytree(current, building)
    with duckdb.connect(str(building / serving.name)) as conn:
        conn.execute("update meta.publication set publication_id = ?", [publication_id])
    layout.switch(building, publication_id)
    return publication_id


def _laid_out_as_publications(serving: Path) -> None:
    """A warehouse copy's serving file is a plain file: lay it out as publications are
    (publications/<id>/, the `current` link), so publications can be switched under it."""
    from orchestration.assets.publish import ServingLayout

    layout, first = ServingLayout(serving), "20240317T000000-bi-test"
    layout.building(first).mkdir(parents=True)
    serving.rename(layout.building(first) / serving.name)
    layout.switch(layout.building(first), first)


def test_the_dashboard_follows_publications_as_they_swap(warehouse_copy, browser):
    """Pages loaded while three publications switch the serving file: every load succeeds (no
    server error, no console error), each names the publication it was computed from, and after
    the last switch the page shows the newest one."""
    serving = settings.serving_path()
    _laid_out_as_publications(serving)
    published, done, loaded = [], threading.Event(), [0]

    def publisher():
        """Each switch waits for a page load after the previous one (a fixed sleep depends on how
        fast pages load), so the pages straddle the switches however slow the machine is."""
        for number in range(3):
            deadline, before = time.monotonic() + 120, loaded[0]
            while loaded[0] == before and time.monotonic() < deadline:
                time.sleep(0.05)
            published.append(_republish(serving, number))
        done.set()

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with running_dashboard(os.environ.copy(), log=ARTIFACTS / "dashboard-swap.log") as running:
        url = running.url
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors, failed = [], []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        start, end = _default_range()
        [(total,)] = _serving(
            "select count(*) from marts.fct_calls_for_service where partition_date between ? and ?", [start, end]
        )
        thread = threading.Thread(target=publisher)
        thread.start()
        shown, loads = set(), 0
        try:
            while not done.is_set() or loads < 4:
                page.goto(url, wait_until="networkidle")
                shown.add(_text(page, "#publication").split()[1].rstrip(","))
                assert _text(page, "#calls-total") == f"{total:,}"
                loads += 1
                loaded[0] = loads
        finally:
            thread.join(timeout=60)
        page.goto(url, wait_until="networkidle")
        assert published[-1] in _text(page, "#publication")
        assert errors == [] and failed == [], (errors, failed, running.log_tail())
    # the first page loaded before the first switch, the last after the third
    assert loads >= 4 and len(shown) >= 2, (loads, shown)


def test_a_bi_client_reads_through_publications_without_failing(warehouse_copy):
    """Superset's way in: SQLAlchemy with duckdb-engine, read-only, no connection pool. The
    dashboard's queries run in a loop while three publications swap the serving file; every
    query succeeds, and the client sees the new publications."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    serving = settings.serving_path()
    _laid_out_as_publications(serving)
    # the README's Superset URI (an absolute path: four slashes), without a pool
    engine = create_engine(f"duckdb:///{serving}?access_mode=read_only", poolclass=NullPool)
    with engine.connect() as conn, pytest.raises(Exception, match="read-only"):
        conn.execute(text("create table marts.written_by_bi as select 1"))
    statements = [
        "select count(*) from marts.fct_calls_for_service",
        "select csa, sum(naloxone_administrations) from marts.mart_overdose_daily group by 1",
        "select * from marts.mart_overdose_clusters order by analysis_date desc, rank limit 20",
        "select name, geometry_wkt from marts.dim_boundaries where layer = 'csa'",
    ]
    seen, failures, done, queries = set(), [], threading.Event(), [0]

    def client():
        while not done.is_set():
            try:
                with engine.connect() as conn:
                    seen.add(conn.execute(text("select publication_id from meta.publication")).scalar_one())
                    for statement in statements:
                        conn.execute(text(statement)).fetchall()
                        queries[0] += 1
            except Exception as exc:  # noqa: BLE001 - any failure is what this test looks for
                failures.append(repr(exc))

    def client_has_seen(publication_id: str) -> None:
        """Wait until the client read `publication_id`, so each switch happens while it reads and
        it sees every publication however slow the machine (fixed sleeps depend on timing)."""
        deadline = time.monotonic() + 60
        while publication_id not in seen:
            assert reader.is_alive() and time.monotonic() < deadline, (publication_id, seen, failures)
            time.sleep(0.02)

    with duckdb.connect(str(serving), read_only=True) as conn:  # closed before the client connects
        published = [conn.execute("select publication_id from meta.publication").fetchone()[0]]
    reader = threading.Thread(target=client)
    reader.start()
    try:
        client_has_seen(published[0])
        for number in range(3):
            published.append(_republish(serving, number))
            client_has_seen(published[-1])
    finally:
        done.set()
        reader.join(timeout=60)
    assert failures == []
    assert seen == set(published) and len(seen) == 4
    # each publication was read by its own pass of the loop, which ran every statement
    assert queries[0] >= len(published) * len(statements), queries[0]


def test_the_reports_open_in_the_browser_with_the_clusters_sql_gives(built, built_reports, browser):
    """The day's outreach and epidemiology reports, opened as files: the most likely cluster's
    observed count is SQL's, nothing is requested from anywhere, no console error."""
    from orchestration.surveillance import reports
    from orchestration.surveillance.policy import POLICY
    from tests.conftest import TEST_END

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(built[0]), read_only=True) as conn:
        [(observed,)] = conn.execute(
            "select observed from marts.mart_overdose_clusters where analysis_date = ? and p_value <= ? and rank = 1",
            [TEST_END, POLICY.report_p],
        ).fetchall()
    paths = reports.report_paths(built_reports, TEST_END)
    for name, path in (("outreach", paths.outreach), ("epidemiology", paths.epidemiology)):
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        errors, requests = [], []
        page.on("console", lambda m, errors=errors: errors.append(m.text) if m.type == "error" else None)
        page.on("request", lambda r, requests=requests: requests.append(r.url))
        page.goto(path.resolve().as_uri(), wait_until="load")
        first_row = page.locator("#clusters tbody tr").first
        header = [h.strip() for h in page.locator("#clusters thead th").all_inner_texts()]
        column = header.index("observed")
        assert first_row.locator("td").nth(column).inner_text().strip() == str(observed)
        page.screenshot(path=str(ARTIFACTS / f"report-{name}.png"), full_page=True)
        assert errors == [], errors
        assert requests == [path.resolve().as_uri()], requests  # the file itself, nothing else
        page.close()


def _working(built, sql: str, params: list | None = None):
    """SQL on the working warehouse's facts (the restricted naloxone fact included): an
    independent count of what the published marts aggregate."""
    with duckdb.connect(str(built[0]), read_only=True) as conn:
        return conn.execute(sql, params or []).fetchall()


def test_every_area_filter_reaches_the_outcome_heatmap_and_health_figures(built):
    from orchestration.dashboard import queries

    start, end = _default_range()
    [(zip_code, district)] = _working(
        built,
        """select g.zip_code, g.police_district_code from restricted.fct_naloxone_administrations f
           join marts.dim_geography g using (geography_key) where not g.is_unknown
           group by all order by count(*) desc, 1, 2 limit 1""",
    )
    outcomes = queries.naloxone_outcomes(queries.Filters(start, end, zips=(zip_code,)), "csa")
    [(in_fact,)] = _working(
        built,
        """select count(*) from restricted.fct_naloxone_administrations f join marts.dim_geography g
           using (geography_key) where g.zip_code = ? and f.partition_date between ? and ?""",
        [zip_code, start.replace(day=1), end],  # the months overlapping the days
    )
    assert outcomes["administrations"].sum() == in_fact > 0

    heat = queries.csa_month_heatmap(queries.Filters(start, end, districts=(district,)))
    [(nonfatal,)] = _working(
        built,
        """select count(*) filter (where f.is_nonfatal_overdose) from restricted.fct_naloxone_administrations f
           join marts.dim_geography g using (geography_key)
           where g.police_district_code = ? and f.partition_date between ? and ? and g.csa <> 'Unknown'""",
        [district, start, end],
    )
    assert heat["nonfatal_overdoses"].sum() == nonfatal > 0

    category = "overdose"
    health = queries.csa_health(queries.Filters(start, end, categories=(category,), zips=(zip_code,)))
    expected = dict(
        _working(
            built,
            """select g.csa, count(f.call_id) from marts.dim_geography g
               left join marts.fct_calls_for_service f on f.geography_key = g.geography_key
                 and f.partition_date between ? and ?
                 and f.call_type_key in (select call_type_key from marts.dim_call_type where call_category = ?)
               where g.csa in (select csa from marts.dim_geography where zip_code = ? and not is_unknown)
               group by 1""",
            [start, end, category, zip_code],
        )
    )
    # whole CSAs reached by the ZIP, each with all its calls of the category over the days
    assert dict(zip(health["csa"], health["calls"], strict=True)) == expected
    assert 0 < len(expected) < 56


def test_the_dashboard_stops_when_asked_even_if_started_with_sigterm_ignored(built):
    """A process started from a background job has SIGINT ignored, and Dagster, run in it, maps
    SIGTERM to the same "ignore", which a child keeps across exec. The dashboard sets its own
    handlers: SIGTERM stops it (else the context would time out, kill it and raise)."""
    import signal

    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN), signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with running_dashboard(os.environ.copy()) as running:
            assert urllib.request.urlopen(running.url, timeout=10).status == 200
    finally:
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGINT, previous[1])
