"""Plotly figures for the pages. Each takes plain data (lists of dicts, dicts) and returns a Figure.

Training is measured in steps (one step learns from one batch of photos), so every training chart
has steps on its x axis. Plotly reads a few HTML tags in trace names and axis labels (<b>, <a href>),
so user text placed there (run names in a legend, label characters) goes through `legend_name`.
"""
from __future__ import annotations

import plotly.graph_objects as go

BLUE = "#1f6feb"
GREEN = "#2da44e"
ORANGE = "#d4760a"
RED = "#cf222e"
PALETTE = ["#1f6feb", "#d4760a", "#2da44e", "#8250df", "#cf222e", "#1b7c83", "#9a6700", "#57606a"]


def _layout(fig: go.Figure, *, title: str | None = None, x: str = "", y: str = "", height: int = 300,
            percent: bool = False, legend: bool = True) -> go.Figure:
    fig.update_layout(
        title=dict(text=title, font=dict(size=15)) if title else None,
        height=height,
        margin=dict(l=10, r=10, t=40 if title else 10, b=95 if legend else 10),
        xaxis_title=x,
        yaxis_title=y,
        showlegend=legend,
        legend=dict(orientation="h", yanchor="top", y=-0.38, xanchor="left", x=0),
        hovermode="x unified",
    )
    if percent:
        fig.update_yaxes(tickformat=".0%", range=[0, 1.02])
    return fig


def _steps_axis(fig: go.Figure) -> go.Figure:
    """Whole steps on the x axis: a short run would otherwise get ticks at 0.5 steps."""
    last = max((x for trace in fig.data for x in (trace.x or ()) if x is not None), default=0)
    if last <= 10:
        fig.update_xaxes(tick0=0, dtick=1)
    return fig.update_xaxes(rangemode="tozero")


def _series(metrics: list[dict], key: str) -> tuple[list, list]:
    rows = [row for row in metrics if row.get(key) is not None and row.get("step") is not None]
    return [row["step"] for row in rows], [row[key] for row in rows]


def loss_chart(metrics: list[dict], *, height: int = 300) -> go.Figure:
    fig = go.Figure()
    xs, ys = _series(metrics, "loss")
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name="training loss", line=dict(color=ORANGE)))
    fig.update_yaxes(rangemode="tozero")  # a loss is never negative: one point alone got an axis down to -0.5
    return _steps_axis(_layout(fig, title="Training loss (lower is better)", x="step", y="loss", height=height, legend=False))


ACCURACY_TRACES = (
    ("val_plate_accuracy", "held-out photos: whole plates", BLUE, None),
    ("val_char_accuracy", "held-out photos: characters", GREEN, None),
    ("train_plate_accuracy", "training photos: whole plates", BLUE, "dot"),
)


def accuracy_chart(metrics: list[dict], *, height: int = 300,
                   title: str = "Read exactly right, at each check") -> go.Figure:
    fig = go.Figure()
    for key, name, color, dash in ACCURACY_TRACES:
        xs, ys = _series(metrics, key)
        if ys:
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name=name, line=dict(color=color, dash=dash)))
    return _steps_axis(_layout(fig, title=title, x="step", y="share right", height=height, percent=True))


def overlay_chart(curves: list[tuple[str, list[dict]]], *, height: int = 360) -> go.Figure:
    """One line per run: (its name, its metrics rows)."""
    fig = go.Figure()
    for i, (name, metrics) in enumerate(curves):
        xs, ys = _series(metrics, "val_plate_accuracy")
        if ys:
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name=legend_name(name), line=dict(color=PALETTE[i % len(PALETTE)])))
    return _steps_axis(_layout(fig, title="Held-out photos read exactly right, by step", x="step", y="share right",
                               height=height, percent=True))


def legend_name(text: str) -> str:
    """User text for a Plotly legend: Plotly reads a few HTML tags (<b>, <a href>) in trace names."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def threshold_chart(rows: list[dict], chosen: dict | None, *, height: int = 340) -> go.Figure:
    """The confidence trade-off: share of plates accepted (x) against the share of the accepted
    readings that are wrong (y), one point per possible threshold; the chosen one marked."""
    fig = go.Figure(go.Scatter(
        x=[r["accepted"] for r in rows], y=[r["wrong"] for r in rows], mode="lines+markers", name="thresholds",
        line=dict(color=BLUE, shape="hv"), marker=dict(size=5),
        customdata=[r["threshold"] for r in rows],
        hovertemplate="accept above %{customdata:.1%}: %{x:.0%} of plates accepted, %{y:.1%} of them wrong<extra></extra>",
    ))
    if chosen:
        fig.add_trace(go.Scatter(x=[chosen["accepted"]], y=[chosen["wrong"]], mode="markers", name="your choice",
                                 marker=dict(color=RED, size=14, symbol="circle-open", line=dict(width=3)),
                                 hoverinfo="skip"))
    fig = _layout(fig, x="share of plates accepted", y="share of accepted plates that are wrong", height=height,
                  legend=False)
    fig.update_xaxes(tickformat=".0%", range=[0, 1.02])
    fig.update_yaxes(tickformat=".1~%", rangemode="tozero")
    fig.update_layout(hovermode="closest")
    return fig


def length_histogram(hist: dict, *, height: int = 260) -> go.Figure:
    items = sorted(((int(k), int(v)) for k, v in (hist or {}).items()), key=lambda kv: kv[0])
    fig = go.Figure(go.Bar(x=[k for k, _ in items], y=[v for _, v in items], marker_color=BLUE,
                           hovertemplate="%{y} plates with %{x} characters<extra></extra>"))
    fig.update_xaxes(dtick=1)
    return _layout(fig, title="Label length", x="characters per plate", y="plates", height=height, legend=False)


def char_histogram(hist: dict, *, height: int = 260) -> go.Figure:
    items = sorted(((str(k), int(v)) for k, v in (hist or {}).items()), key=lambda kv: (-kv[1], kv[0]))
    fig = go.Figure(go.Bar(x=[legend_name(k) for k, _ in items], y=[v for _, v in items], marker_color=GREEN,
                           hovertemplate="'%{x}': %{y} times<extra></extra>"))
    fig.update_xaxes(type="category", dtick=1, tickfont=dict(size=10))
    return _layout(fig, title="Characters", x="character", y="times seen", height=height, legend=False)
