"""The Dash app: four views over the published marts, one set of filters.

Numbers come from `queries` (SQL on the serving database); this module only lays them out.
Dash serves its own JavaScript from the wheel (`serve_locally`), maps are drawn from the
warehouse's polygons: the page loads nothing from outside 127.0.0.1.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from datetime import date, timedelta

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from dash import Dash, Input, Output, dash_table, dcc, html

from orchestration.dashboard import maps, queries
from orchestration.dashboard.data import NoPublication, publication

GRAPH = {"displaylogo": False}
NOT_BY_CATEGORY = (
    "The call-category filter does not apply here: overdose figures are overdose 911 calls and EMS "
    "naloxone administrations."
)
RESPONSE_ORDER = ["Improved", "Unchanged", "Worse", "Not Recorded", "Not Applicable"]


# Dash serves callbacks on threads, and plotly's figure objects are not thread-safe: two figures
# built at once can corrupt the shared default template (plotly/plotly.py#3441, a 500 seen by
# the browser test while pages loaded concurrently). Callbacks therefore run one at a time.
_ONE_AT_A_TIME = threading.Lock()


def _serialized(callback: Callable) -> Callable:
    @functools.wraps(callback)
    def run(*args):
        with _ONE_AT_A_TIME:
            return callback(*args)

    return run


def _filters(start, end, categories, csas, zips, districts) -> queries.Filters:
    return queries.Filters(
        date.fromisoformat(str(start)[:10]),
        date.fromisoformat(str(end)[:10]),
        tuple(categories or ()),
        tuple(csas or ()),
        tuple(zips or ()),
        tuple(districts or ()),
    )


def _table(frame: pd.DataFrame, table_id: str, page_size: int = 15) -> dash_table.DataTable:
    shown = frame.copy()
    for column in shown.columns:
        if pd.api.types.is_datetime64_any_dtype(shown[column]):
            shown[column] = shown[column].dt.strftime("%Y-%m-%d")
    return dash_table.DataTable(
        id=table_id,
        data=shown.astype(object).where(shown.notna(), None).to_dict("records"),
        columns=[{"name": c.replace("_", " "), "id": c} for c in shown.columns],
        page_size=page_size,
        sort_action="native",
        style_table={"overflowX": "auto"},
        style_cell={"fontFamily": "sans-serif", "fontSize": 13, "textAlign": "left"},
    )


def _kpi(label: str, value_id: str) -> html.Div:
    return html.Div(
        [html.Div(label, className="kpi-label"), html.Div(id=value_id, className="kpi-value")],
        className="kpi",
    )


def _heatmap(heat: pd.DataFrame) -> go.Figure:
    """One cell per CSA and month, as SQL gave it (no binning by the chart); empty cells are 0."""
    cells = heat.pivot(index="csa", columns="month", values="nonfatal_overdoses").fillna(0)
    figure = go.Figure(
        go.Heatmap(
            z=cells.to_numpy(),
            x=[str(m)[:7] for m in cells.columns],
            y=cells.index.tolist(),
            colorscale="YlOrRd",
            colorbar={"title": "non-fatal"},
            hovertemplate="%{y}, %{x}: %{z}<extra></extra>",
        )
    )
    figure.update_layout(title="Non-fatal overdoses, CSA x month", height=1000)
    figure.update_xaxes(type="category")
    figure.update_yaxes(autorange="reversed", dtick=1)
    return figure


def _no_data(title: str) -> go.Figure:
    figure = go.Figure()
    figure.update_layout(title=f"{title}: no data for these filters", height=300)
    return figure


def layout() -> html.Div:
    """The page; its choices are read from the marts each time it loads."""
    try:
        pub = publication()
        options = queries.options()
    except NoPublication as exc:
        return html.Div([html.H1("Baltimore warehouse"), html.P(str(exc), id="no-publication")])
    last = options["last"]
    first = max(options["first"], last - timedelta(days=364))
    days = queries.analysis_days()

    def dropdown(name: str, values: list[str], placeholder: str) -> dcc.Dropdown:
        return dcc.Dropdown(id=name, options=values, multi=True, placeholder=placeholder, style={"minWidth": "220px"})

    filters = html.Div(
        [
            dcc.DatePickerRange(
                id="dates",
                min_date_allowed=options["first"],
                max_date_allowed=last,
                start_date=first,
                end_date=last,
                display_format="YYYY-MM-DD",
            ),
            dropdown("categories", options["categories"], "all call categories"),
            dropdown("csas", options["csas"], "all CSAs"),
            dropdown("zips", options["zips"], "all ZIPs"),
            dropdown("districts", options["districts"], "all police districts"),
        ],
        className="filters",
    )
    calls = dcc.Tab(
        label="911 calls",
        value="calls",
        children=[
            html.Div(
                [_kpi("Calls", "calls-total"), _kpi("Top ZIP", "top-zip"), _kpi("Top CSA", "top-csa")], className="kpis"
            ),
            dcc.Graph(id="calls-by-year", config=GRAPH),
            dcc.Graph(id="calls-by-month", config=GRAPH),
            html.Div(
                [dcc.Graph(id="calls-by-weekday", config=GRAPH), dcc.Graph(id="calls-by-hour", config=GRAPH)],
                className="row",
            ),
            dcc.Graph(id="calls-by-category", config=GRAPH),
            html.Div(
                [dcc.Graph(id="calls-top-zips", config=GRAPH), dcc.Graph(id="calls-top-csas", config=GRAPH)],
                className="row",
            ),
            dcc.Graph(id="calls-map", config=GRAPH),
        ],
    )
    overdoses = dcc.Tab(
        label="Overdoses",
        value="overdoses",
        children=[
            html.Div(
                [_kpi("Overdose calls", "overdose-calls-total"), _kpi("Naloxone administrations", "naloxone-total")],
                className="kpis",
            ),
            html.P(NOT_BY_CATEGORY, className="note"),
            dcc.RadioItems(id="grain", options=["day", "week", "month"], value="week", inline=True),
            dcc.Graph(id="overdose-series", config=GRAPH),
            html.Div(
                [dcc.Graph(id="overdose-weekday", config=GRAPH), dcc.Graph(id="overdose-zips", config=GRAPH)],
                className="row",
            ),
            dcc.Graph(id="overdose-csas", config=GRAPH),
            dcc.Graph(id="outcomes-by-month", config=GRAPH),
            dcc.Graph(id="outcomes-by-csa", config=GRAPH),
        ],
    )
    health = dcc.Tab(
        label="Neighborhood health",
        value="health",
        children=[
            html.P(
                "Rates are per 1,000 residents (2010 population) per year over the chosen days, for whole "
                "CSAs: the CSA, ZIP and district filters choose which CSAs are shown; the call-category "
                "filter applies to the call rate.",
                className="note",
            ),
            dcc.Dropdown(
                id="indicator",
                options=[{"label": v, "value": k} for k, v in queries.INDICATORS.items()],
                value="hardship_index",
                clearable=False,
            ),
            html.Div(
                [dcc.Graph(id="health-scatter", config=GRAPH), dcc.Graph(id="health-map", config=GRAPH)],
                className="row",
            ),
            html.Div(id="health-table"),
        ],
    )
    surveillance = dcc.Tab(
        label="Surveillance",
        value="surveillance",
        children=[
            html.P(
                "Clusters, alerts and the 30-day series are citywide, for the analysis day; the heatmap and the "
                "cluster log follow the date range, the heatmap the area filters too. " + NOT_BY_CATEGORY,
                className="note",
            ),
            dcc.Dropdown(
                id="analysis-date",
                options=[str(d) for d in days],
                value=str(days[0]) if days else None,
                clearable=False,
            ),
            html.Div(
                [_kpi("Clusters", "cluster-count"), _kpi("Most likely cluster: observed", "top-cluster-observed")],
                className="kpis",
            ),
            dcc.Graph(id="cluster-map", config=GRAPH),
            html.H3("Clusters"),
            html.Div(id="cluster-table"),
            html.H3("EARS alerts"),
            html.Div(id="alerts-table"),
            dcc.Graph(id="citywide-30", config=GRAPH),
            dcc.Graph(id="csa-heatmap", config=GRAPH),
            html.H3("Cluster log"),
            html.Div(id="cluster-log"),
        ],
    )
    return html.Div(
        [
            html.H1("Baltimore 911 calls and overdose surveillance"),
            html.P(
                f"Publication {pub.publication_id}, published {pub.published_at} UTC",
                id="publication",
                title=str(pub.path),
            ),
            filters,
            dcc.Tabs(id="tabs", value="calls", children=[calls, overdoses, health, surveillance]),
        ]
    )


def build_app() -> Dash:
    app = Dash(__name__, title="Baltimore warehouse", serve_locally=True, update_title=None)
    app.layout = layout  # a function: every page load reads the newest publication
    filter_inputs = [
        Input("dates", "start_date"),
        Input("dates", "end_date"),
        Input("categories", "value"),
        Input("csas", "value"),
        Input("zips", "value"),
        Input("districts", "value"),
    ]

    @app.callback(
        [
            Output("calls-total", "children"),
            Output("top-zip", "children"),
            Output("top-csa", "children"),
            Output("calls-by-year", "figure"),
            Output("calls-by-month", "figure"),
            Output("calls-by-weekday", "figure"),
            Output("calls-by-hour", "figure"),
            Output("calls-by-category", "figure"),
            Output("calls-top-zips", "figure"),
            Output("calls-top-csas", "figure"),
            Output("calls-map", "figure"),
        ],
        filter_inputs,
    )
    @_serialized
    def calls_view(*values):
        f = _filters(*values)
        total = queries.calls_total(f)
        zips, csas = queries.top_areas(f, "g.zip_code"), queries.top_areas(f, "g.csa")
        weekday = queries.calls_by(f, "isodow(f.partition_date)", "weekday")
        weekday["weekday"] = weekday["weekday"].map(lambda d: queries.WEEKDAYS[int(d) - 1])
        rates = queries.csa_health(f)  # the health view's rates: whole CSAs, the chosen categories
        return (
            f"{total:,}",
            zips["area"].iloc[0] if len(zips) else "-",
            csas["area"].iloc[0] if len(csas) else "-",
            px.bar(
                queries.calls_by(f, "year(f.partition_date)", "year"), x="year", y="calls", title="Calls by year"
            ).update_xaxes(type="category"),
            px.line(
                queries.calls_by(f, "cast(date_trunc('month', f.partition_date) as date)", "month"),
                x="month",
                y="calls",
                markers=True,
                title="Calls by month",
            ),
            px.bar(weekday, x="weekday", y="calls", title="Calls by day of week"),
            px.bar(queries.calls_by(f, "f.time_of_day_key", "hour"), x="hour", y="calls", title="Calls by hour"),
            px.line(
                queries.calls_by_category_year(f),
                x="year",
                y="calls",
                color="category",
                markers=True,
                title="Calls by category over the years",
            ).update_xaxes(type="category"),
            px.bar(zips, x="calls", y="area", orientation="h", title="Top ZIPs").update_yaxes(
                autorange="reversed", type="category"
            ),
            px.bar(csas, x="calls", y="area", orientation="h", title="Top CSAs").update_yaxes(autorange="reversed"),
            maps.choropleth(
                queries.boundaries("csa"),
                rates.set_index("csa")["calls_per_1000_per_year"],
                "Calls per 1,000 residents per year (2010 population; whole CSAs the area filters reach)",
                "per 1,000",
            ),
        )

    @app.callback(
        [
            Output("overdose-calls-total", "children"),
            Output("naloxone-total", "children"),
            Output("overdose-series", "figure"),
            Output("overdose-weekday", "figure"),
            Output("overdose-zips", "figure"),
            Output("overdose-csas", "figure"),
            Output("outcomes-by-month", "figure"),
            Output("outcomes-by-csa", "figure"),
        ],
        [*filter_inputs, Input("grain", "value")],
    )
    @_serialized
    def overdose_view(*values):
        f, grain = _filters(*values[:-1]), values[-1]
        by_zip, by_area = queries.overdoses_by(f, "zip_code").head(15), queries.overdoses_by(f, "csa").head(20)
        series = queries.overdose_series(f, grain)
        overdose_calls, naloxone = queries.overdose_totals(f)
        weekday = queries.overdoses_by_weekday(f)
        weekday["weekday"] = weekday["weekday"].map(lambda d: queries.WEEKDAYS[int(d) - 1])
        by_month, by_csa = queries.naloxone_outcomes(f, "month"), queries.naloxone_outcomes(f, "csa")
        order = {"medication_response": RESPONSE_ORDER}
        long = series.melt(id_vars="period", var_name="measure", value_name="count")
        return (
            f"{overdose_calls:,}",
            f"{naloxone:,}",
            px.line(long, x="period", y="count", color="measure", title=f"Overdoses by {grain}")
            if len(long)
            else _no_data("Overdoses"),
            px.bar(
                weekday,
                x="weekday",
                y=["overdose_calls", "naloxone_administrations"],
                barmode="group",
                title="By day of week",
            ),
            px.bar(
                by_zip,
                x=["naloxone_administrations", "overdose_calls"],
                y="area",
                orientation="h",
                barmode="group",
                title="By ZIP (15 most)",
            ).update_yaxes(autorange="reversed", type="category"),
            px.bar(
                by_area,
                x="area",
                y=["naloxone_administrations", "overdose_calls"],
                barmode="group",
                title="By CSA (20 most)",
            ),
            px.bar(
                by_month,
                x="key",
                y="administrations",
                color="medication_response",
                category_orders=order,
                title="Naloxone outcomes by month",
            )
            if len(by_month)
            else _no_data("Naloxone outcomes"),
            px.bar(
                by_csa,
                x="key",
                y="administrations",
                color="medication_response",
                category_orders=order,
                title="Naloxone outcomes by CSA",
            )
            if len(by_csa)
            else _no_data("Naloxone outcomes by CSA"),
        )

    @app.callback(
        [Output("health-scatter", "figure"), Output("health-map", "figure"), Output("health-table", "children")],
        [*filter_inputs, Input("indicator", "value")],
    )
    @_serialized
    def health_view(*values):
        f, indicator = _filters(*values[:-1]), values[-1]
        profile = queries.csa_health(f)
        label = queries.INDICATORS[indicator]
        scatter = px.scatter(
            profile,
            x=indicator,
            y="nonfatal_overdoses_per_1000_per_year",
            hover_name="csa",
            labels={indicator: label, "nonfatal_overdoses_per_1000_per_year": "non-fatal overdoses per 1,000 per year"},
            title=f"Non-fatal overdose rate against {label}",
        )
        shown = profile[
            [
                "csa",
                "population",
                indicator,
                "calls",
                "nonfatal_overdoses",
                "calls_per_1000_per_year",
                "overdose_calls_per_1000_per_year",
                "nonfatal_overdoses_per_1000_per_year",
            ]
        ]
        return (
            scatter,
            maps.choropleth(queries.boundaries("csa"), profile.set_index("csa")[indicator], label, ""),
            _table(shown.round(2), "health-profile", page_size=20),
        )

    @app.callback(
        [
            Output("cluster-count", "children"),
            Output("top-cluster-observed", "children"),
            Output("cluster-map", "figure"),
            Output("cluster-table", "children"),
            Output("alerts-table", "children"),
            Output("citywide-30", "figure"),
            Output("csa-heatmap", "figure"),
            Output("cluster-log", "children"),
        ],
        [Input("analysis-date", "value"), *filter_inputs],
    )
    @_serialized
    def surveillance_view(analysis_date, *values):
        if not analysis_date:
            empty = html.P("No surveillance analysis has been published yet.")
            return "0", "-", _no_data("Clusters"), empty, empty, _no_data("30 days"), _no_data("Heatmap"), empty
        day = date.fromisoformat(analysis_date)
        found = queries.clusters(day)
        f = _filters(*values)
        heat = queries.csa_month_heatmap(f)
        series = queries.citywide_30_days(day)
        alerts = queries.alerts(day)
        table = found.drop(columns=["center_latitude", "center_longitude", "cluster_id"])
        return (
            str(len(found)),
            str(int(found["observed"].iloc[0])) if len(found) else "-",
            maps.cluster_map(queries.boundaries("csa"), found, f"Clusters on {day} (circles: no patient points)"),
            _table(table, "clusters") if len(found) else html.P(f"No cluster was significant on {day}."),
            _table(alerts, "alerts") if len(alerts) else html.P(f"No EARS alert on {day}."),
            px.bar(series, x="day", y="nonfatal_overdoses", title="Non-fatal overdoses citywide, last 30 days")
            if len(series)
            else _no_data("30 days"),
            _heatmap(heat) if len(heat) else _no_data("Heatmap"),
            _table(queries.cluster_log(f.start, f.end), "cluster-log-table"),
        )

    return app
