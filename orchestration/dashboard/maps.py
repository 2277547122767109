"""Maps drawn from the warehouse's own polygons: no basemap, no tiles, nothing fetched.

Polygons (WKT from `marts.dim_boundaries`) become filled plotly scatter traces on plain axes
with equal scale; a choropleth colours each area from a value; clusters are circles of their
radius around their centre (no patient point is ever drawn).
"""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import sample_colorscale
from shapely import wkt

COLOR_SCALE = "YlOrRd"
KM_PER_DEGREE_LAT = 111.32


def _rings(geometry_wkt: str) -> list[tuple[list[float], list[float]]]:
    shape = wkt.loads(geometry_wkt)
    polygons = list(shape.geoms) if shape.geom_type == "MultiPolygon" else [shape]
    return [tuple(map(list, p.exterior.xy)) for p in polygons]


def _filled(x: list[float], y: list[float], fill: str, outline: str, width: float, label: str) -> go.Scatter:
    """A closed outline filled with `fill`, labelled on hover (areas and cluster circles alike)."""
    return go.Scatter(
        x=x,
        y=y,
        mode="lines",
        fill="toself",
        fillcolor=fill,
        line={"color": outline, "width": width},
        hoverinfo="text",
        text=label,
        name=label,
    )


def _add_area(figure: go.Figure, geometry_wkt: str, fill: str, outline: str, label: str) -> None:
    """One area's polygons as filled traces, labelled on hover."""
    for x, y in _rings(geometry_wkt):
        figure.add_trace(_filled(x, y, fill, outline, 0.6, label))


def base_figure(title: str) -> go.Figure:
    figure = go.Figure()
    figure.update_layout(
        title=title,
        showlegend=False,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        height=520,
        plot_bgcolor="white",
        xaxis={"visible": False},
        yaxis={"visible": False, "scaleanchor": "x", "scaleratio": 1 / math.cos(math.radians(39.3))},
    )
    return figure


def choropleth(polygons: pd.DataFrame, values: pd.Series, title: str, unit: str) -> go.Figure:
    """`values` indexed by area name; areas without a value are grey."""
    figure = base_figure(title)
    known = values.dropna()
    low, high = (float(known.min()), float(known.max())) if len(known) else (0.0, 1.0)
    for row in polygons.itertuples():
        value = values.get(row.name)
        if value is None or pd.isna(value):
            colour, label = "#dddddd", row.name
        else:
            colour = sample_colorscale(COLOR_SCALE, [(value - low) / (high - low) if high > low else 0.5])[0]
            label = f"{row.name}: {value:,.1f} {unit}"
        _add_area(figure, row.geometry_wkt, colour, "#555555", label)
    # a colour bar for the scale (an invisible marker trace carries it)
    figure.add_trace(
        go.Scatter(
            x=[None],
            y=[None],
            mode="markers",
            hoverinfo="skip",
            marker={
                "colorscale": COLOR_SCALE,
                "cmin": low,
                "cmax": high,
                "color": [low],
                "showscale": True,
                "colorbar": {"title": unit},
            },
        )
    )
    return figure


def circle(latitude: float, longitude: float, radius_km: float, points: int = 72) -> tuple[list[float], list[float]]:
    """A circle of `radius_km` around a centre, in degrees (small-distance approximation)."""
    radius_km = max(radius_km, 0.05)  # a one-location cluster still shows as a small ring
    dlat = radius_km / KM_PER_DEGREE_LAT
    dlon = radius_km / (KM_PER_DEGREE_LAT * math.cos(math.radians(latitude)))
    angles = [2 * math.pi * i / points for i in range(points + 1)]
    return [longitude + dlon * math.cos(a) for a in angles], [latitude + dlat * math.sin(a) for a in angles]


def cluster_map(polygons: pd.DataFrame, clusters: pd.DataFrame, title: str) -> go.Figure:
    """CSA outlines with each cluster as a circle (red when it is a spike), labelled by rank."""
    figure = base_figure(title)
    for row in polygons.itertuples():
        _add_area(figure, row.geometry_wkt, "#f6f6f6", "#999999", row.name)
    for c in clusters.itertuples():
        x, y = circle(c.center_latitude, c.center_longitude, c.radius_km)
        colour = "#c62828" if c.is_spike else "#ef6c00"
        fill = "rgba(198,40,40,0.25)" if c.is_spike else "rgba(239,108,0,0.15)"
        label = f"cluster {c.rank}: {c.observed} observed, {c.expected} expected, p = {c.p_value}"
        figure.add_trace(_filled(x, y, fill, colour, 2, label))
        figure.add_annotation(x=c.center_longitude, y=c.center_latitude, text=str(c.rank), showarrow=False)
    return figure
