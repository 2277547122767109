"""The daily surveillance reports over the warehouse the session built (its last day has the
demo's injected outbreaks): figures against SQL, no patient detail in the outreach report,
small cells suppressed in the epidemiology report, plain words when nothing is significant."""

from __future__ import annotations

import re
import tempfile
from datetime import date
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pytest

from orchestration.surveillance import reports
from orchestration.surveillance.policy import POLICY
from tests.conftest import TEST_END


class Tables(HTMLParser):
    """The text of every table cell, by table id."""

    def __init__(self):
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table, self._row, self._cell = None, None, None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._table = dict(attrs).get("id")
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append(self._cell)
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def _tables(path: Path) -> dict[str, list[list[str]]]:
    parser = Tables()
    parser.feed(path.read_text())
    return parser.tables


def test_the_days_reports_show_the_clusters_sql_gives_and_no_patient_detail(built, built_reports):
    path, result = built
    paths = reports.report_paths(built_reports, TEST_END)
    assert paths.outreach.exists() and paths.epidemiology.exists()
    with duckdb.connect(str(path), read_only=True) as conn:
        expected = conn.execute(
            """select rank, observed, round(radius_km * 1000) from marts.mart_overdose_clusters
               where analysis_date = ? and p_value <= ? order by rank""",
            [TEST_END, POLICY.report_p],
        ).fetchall()
        points = conn.execute(
            """select distinct round(latitude, 4), round(longitude, 4) from restricted.fct_naloxone_administrations
               where latitude is not null"""
        ).fetchall()
    assert expected, "the demo's last day has an injected outbreak"
    [header, *rows] = _tables(paths.outreach)["clusters"]
    shown = [
        (int(r[header.index("cluster")]), int(r[header.index("observed")]), float(r[header.index("radius (m)")]))
        for r in rows
    ]
    assert shown == [(int(a), int(b), float(c)) for a, b, c in expected]
    outreach = paths.outreach.read_text()
    assert "<svg" in outreach and "<circle" in outreach  # the map: circles over CSA polygons
    assert "http://" not in outreach and "https://" not in outreach  # self-contained
    for lat, lon in points:  # no case location, at any precision the fact holds
        assert f"{lat:.4f}" not in outreach or f"{lon:.4f}" not in outreach
    for detail in ("Female", "Male", "age band"):
        assert detail not in outreach
    # the spike notification names the report
    spikes = [e for e in result.get_asset_materialization_events() if e.asset_key.path[-1] == "mart_overdose_clusters"]
    listed = spikes[-1].materialization.metadata["spikes"].value
    assert listed and all(s["reports"]["outreach"] == str(paths.outreach) for s in listed)


def test_the_epidemiology_report_suppresses_small_cells_and_adds_up(built, built_reports):
    path, _ = built
    paths = reports.report_paths(built_reports, TEST_END)
    tables = _tables(paths.epidemiology)
    [header, *rows] = tables["demographics"]
    columns = ("cluster cases", "all cases")
    cells = [r[header.index(c)] for r in rows for c in columns]
    assert all(c in ("<5", reports.HIDDEN, "0") or int(c.replace(",", "")) >= 5 for c in cells)
    # no hidden count can be worked out: a dimension's column hides none or at least two cells
    # (its total is known from elsewhere), and no row gives away a small count outside clusters
    for dimension in {r[0] for r in rows}:
        for column in columns:
            hidden_cells = [r for r in rows if r[0] == dimension and r[header.index(column)] in ("<5", reports.HIDDEN)]
            assert len(hidden_cells) != 1, (dimension, column)
    for r in rows:
        both = [r[header.index(c)] for c in columns]
        if all(c not in ("<5", reports.HIDDEN) for c in both):
            outside = int(both[1].replace(",", "")) - int(both[0].replace(",", ""))
            assert outside == 0 or outside >= 5, r
    with duckdb.connect(str(path), read_only=True) as conn:
        [(total,)] = conn.execute(
            """select count(*) from restricted.fct_naloxone_administrations
               where is_nonfatal_overdose and incident_date between ? - interval 29 day and ?""",
            [TEST_END, TEST_END],
        ).fetchall()
    sexes = [r for r in rows if r[0] == "sex"]
    shown = [r[header.index("all cases")] for r in sexes]
    known = sum(int(c.replace(",", "")) for c in shown if c not in ("<5", reports.HIDDEN))
    small, hidden = shown.count("<5"), shown.count(reports.HIDDEN)
    assert known + small <= total and (hidden or total <= known + 4 * small)  # every case counted once by sex
    [header, *series] = tables["series"]
    assert len(series) == 30


def test_complementary_cells_are_hidden_with_the_small_ones():
    """Worked by hand: Male has 12 of its 14 cases in clusters, so 2 outside would follow from two
    shown cells; an age column with one small cell would give it away through the column's
    total (the clusters' observed counts are in the report), so its next smallest cell goes too."""
    import pandas as pd

    people = pd.DataFrame(
        [
            ("age band", "18-29", 2, 30),
            ("age band", "30-49", 10, 40),
            ("age band", "50+", 7, 25),
            ("sex", "Female", 3, 20),
            ("sex", "Male", 12, 14),
            ("sex", "Other or unknown", 0, 9),
        ],
        columns=["dimension", "value", "cluster_cases", "all_cases"],
    )
    shown = reports.protected(people)
    x = reports.HIDDEN
    assert shown["cluster_cases"].tolist() == ["<5", "10", x, "<5", x, "0"]
    assert shown["all_cases"].tolist() == ["30", "40", "25", "20", "14", "9"]
    # a day with no case: an empty table, nothing to hide
    assert reports.protected(people.iloc[0:0]).empty
    # nothing small: nothing hidden
    big = people.assign(cluster_cases=[20, 10, 7, 30, 12, 0], all_cases=[30, 40, 25, 40, 20, 9])
    assert x not in reports.protected(big)[["cluster_cases", "all_cases"]].to_numpy()


def test_a_day_without_a_significant_cluster_says_so(built, tmp_path):
    path, _ = built
    with duckdb.connect(str(path), read_only=True) as conn:
        written = reports.write_reports(conn, TEST_END, tmp_path, report_p=1e-12, pdf=False)
    assert written["clusters"] == "0"
    for name in ("outreach", "epidemiology"):
        text = Path(written[name]).read_text()
        assert re.search(r"No cluster of non-fatal overdoses was found on 2024-03-17", text)


def test_reports_are_printed_to_pdf_where_chromium_is_installed(built, tmp_path):
    import pytest

    if not reports.CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed: the reports stay HTML")
    path, _ = built
    with duckdb.connect(str(path), read_only=True) as conn:
        written = reports.write_reports(conn, date(2024, 3, 17), tmp_path, POLICY.report_p, pdf=True)
    pdfs = [Path(written[name]).read_bytes() for name in ("outreach_pdf", "epidemiology_pdf")]
    assert [pdf[:5] for pdf in pdfs] == [b"%PDF-", b"%PDF-"]
    # printed side by side, each browser printed its own report: the two documents differ
    assert pdfs[0] != pdfs[1] and min(len(pdf) for pdf in pdfs) > 10_000


def test_two_patients_alike_in_a_cluster_count_twice(built, tmp_path):
    """Cluster cases are counted by administration: two patients of the same age band and sex,
    at the same point on the same day, are two cases (not one distinct row)."""
    path, _ = built
    copy = tmp_path / path.name
    import shutil

    shutil.copy(path, copy)
    with duckdb.connect(str(copy)) as conn:
        before = reports.demographics(conn, TEST_END, POLICY.report_p)
        # one more patient, a copy of a cluster case (in its circle and window) in every field but its id
        conn.execute(
            """insert into restricted.fct_naloxone_administrations
               select f.* replace (f.administration_id || '-twin' as administration_id)
               from restricted.fct_naloxone_administrations f
               join restricted.overdose_cluster_locations l
                 on l.location = round(f.latitude, 4)::varchar || ',' || round(f.longitude, 4)::varchar
               join marts.mart_overdose_clusters c using (analysis_date, rank)
               where l.analysis_date = ? and c.p_value <= ? and f.is_nonfatal_overdose
                 and f.incident_date between c.start_date and c.end_date
               order by f.administration_id limit 1""",
            [TEST_END, POLICY.report_p],
        )
        after = reports.demographics(conn, TEST_END, POLICY.report_p)
    sex = lambda frame: frame[frame["dimension"] == "sex"][["cluster_cases", "all_cases"]].sum()  # noqa: E731
    assert (sex(after) - sex(before)).tolist() == [1, 1]


def test_a_browser_that_cannot_start_leaves_no_other_running(tmp_path, monkeypatch):
    """The two reports print side by side: when the second chromium cannot start, the first is
    stopped (not left printing after the run) and the error is raised."""
    started = []

    class Browser:
        def __init__(self, command, **kwargs):
            if started:
                raise OSError("Too many open files")
            self.killed = self.waited = False
            started.append(self)

        def poll(self):
            return -9 if self.killed else None

        def kill(self):
            self.killed = True

        def wait(self, timeout=None):
            self.waited = True
            return -9

    monkeypatch.setattr(reports, "CHROMIUM", tmp_path / "chromium")
    (tmp_path / "chromium").touch()
    monkeypatch.setattr(reports.subprocess, "Popen", Browser)
    with pytest.raises(OSError, match="Too many open files"):
        reports.print_pdfs([tmp_path / "outreach.html", tmp_path / "epidemiology.html"])
    assert len(started) == 1 and started[0].killed and started[0].waited
    assert not list(Path(tempfile.gettempdir()).glob("warehouse-chromium-*"))
    assert not list(Path("/dev/shm").glob("warehouse-chromium-*"))


def _flag(command: list[str], name: str) -> Path:
    """The path a Chromium command line gives with `name=...`."""
    return Path(next(a for a in command if a.startswith(name + "=")).split("=", 1)[1])


def test_each_browser_prints_with_its_own_profile_removed_afterwards(tmp_path, monkeypatch):
    """Not the user's default profile, which two browsers side by side would share."""
    commands = []

    class Browser:
        def __init__(self, command, **kwargs):
            commands.append(command)
            profile = _flag(command, "--user-data-dir")
            assert profile.is_dir() and not any(profile.iterdir())  # new and empty
            pdf = _flag(command, "--print-to-pdf")
            pdf.write_bytes(b"%PDF-")

        def poll(self):
            return 0

        def wait(self, timeout=None):
            return 0

    monkeypatch.setattr(reports, "CHROMIUM", tmp_path / "chromium")
    (tmp_path / "chromium").touch()
    monkeypatch.setattr(reports.subprocess, "Popen", Browser)
    html = [tmp_path / "outreach.html", tmp_path / "epidemiology.html"]
    printed = reports.print_pdfs(html)
    assert printed == {h: h.with_suffix(".pdf") for h in html}
    profiles = [_flag(c, "--user-data-dir") for c in commands]
    assert len(set(profiles)) == 2
    assert not any(p.exists() for p in profiles)


@pytest.mark.parametrize("stop", ["timeout", "interrupt"])
def test_a_print_that_hangs_or_is_interrupted_leaves_no_browser_and_no_profile(tmp_path, monkeypatch, stop):
    """A browser past its timeout, or the run stopped (Ctrl-C, a terminated run) while waiting:
    every browser still running is killed and every profile folder removed."""
    browsers, profiles = [], []

    class Browser:
        def __init__(self, command, **kwargs):
            self.killed = False
            browsers.append(self)
            profiles.append(_flag(command, "--user-data-dir"))

        def poll(self):
            return -9 if self.killed else None

        def kill(self):
            self.killed = True

        def wait(self, timeout=None):
            if self.killed:
                return -9
            if stop == "interrupt":
                raise KeyboardInterrupt
            raise reports.subprocess.TimeoutExpired("chromium", timeout)

    monkeypatch.setattr(reports, "CHROMIUM", tmp_path / "chromium")
    (tmp_path / "chromium").touch()
    monkeypatch.setattr(reports.subprocess, "Popen", Browser)
    html = [tmp_path / "outreach.html", tmp_path / "epidemiology.html"]
    if stop == "interrupt":
        with pytest.raises(KeyboardInterrupt):
            reports.print_pdfs(html)
    else:
        assert reports.print_pdfs(html) == dict.fromkeys(html)
    assert len(browsers) == 2 and all(b.killed for b in browsers)
    assert len(profiles) == 2 and not any(p.exists() for p in profiles)
