"""Plotly figures for the pages. Each takes plain data (lists of dicts, dicts) and returns a Figure."""
from __future__ import annotations

import math
from typing import Iterable

import pandas as pd
import plotly.graph_objects as go

from dashboard.common import fmt_time

BLUE = "#1f6feb"
GREEN = "#2da44e"
ORANGE = "#d4760a"
GREY = "#8c959f"
PALETTE = ["#1f6feb", "#d4760a", "#2da44e", "#8250df", "#cf222e", "#1b7c83", "#9a6700", "#57606a"]


def _layout(fig: go.Figure, *, title: str | None = None, x: str = "", y: str = "", height: int = 300,
            percent: bool = False, legend: bool = True) -> go.Figure:
    fig.update_layout(
        title=dict(text=title, font=dict(size=15)) if title else None,
        height=height,
        margin=dict(l=10, r=10, t=40 if title else 10, b=10),
        xaxis_title=x,
        yaxis_title=y,
        showlegend=legend,
        legend=dict(orientation="h", yanchor="top", y=-0.28, xanchor="left", x=0),
        hovermode="x unified",
    )
    if legend:
        fig.update_layout(margin=dict(l=10, r=10, t=40 if title else 10, b=70))
    if percent:
        fig.update_yaxes(tickformat=".0%", range=[0, 1.02])
    return fig


def _series(metrics: list[dict], key: str) -> tuple[list, list]:
    xs, ys = [], []
    for row in metrics:
        value = row.get(key)
        if value is None:
            continue
        xs.append(row.get("epoch", len(xs) + 1))
        ys.append(value)
    return xs, ys


def _epoch_axis(fig: go.Figure) -> go.Figure:
    """Whole epochs on the x axis (no 0.5 epoch ticks), about ten ticks at most."""
    last = 1
    for trace in fig.data:
        xs = [x for x in (trace.x or []) if x is not None]
        if xs:
            last = max(last, max(xs))
    fig.update_xaxes(tickmode="linear", tick0=0, dtick=max(1, math.ceil(last / 10)), rangemode="tozero")
    return fig


def loss_chart(metrics: list[dict], *, height: int = 300) -> go.Figure:
    fig = go.Figure()
    xs, ys = _series(metrics, "loss")
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name="training loss", line=dict(color=ORANGE)))
    vx, vy = _series(metrics, "val_loss")
    if vy:
        fig.add_trace(go.Scatter(x=vx, y=vy, mode="lines+markers", name="validation loss", line=dict(color=GREY)))
    return _epoch_axis(_layout(fig, title="Loss (lower is better)", x="epoch", y="loss", height=height))


def accuracy_chart(metrics: list[dict], *, height: int = 300, title: str = "Accuracy per epoch") -> go.Figure:
    fig = go.Figure()
    for key, name, color, dash in (
        ("val_plate_accuracy", "validation: whole plates", BLUE, None),
        ("val_char_accuracy", "validation: characters", GREEN, None),
        ("train_plate_accuracy", "training: whole plates", BLUE, "dot"),
    ):
        xs, ys = _series(metrics, key)
        if ys:
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name=name, line=dict(color=color, dash=dash)))
    return _epoch_axis(_layout(fig, title=title, x="epoch", y="share correct", height=height, percent=True))


def overlay_chart(curves: dict[str, list[dict]], key: str = "val_plate_accuracy", *, height: int = 360) -> go.Figure:
    """One line per run: `curves` maps a run label to its metrics rows."""
    fig = go.Figure()
    for i, (label, metrics) in enumerate(curves.items()):
        xs, ys = _series(metrics, key)
        if ys:
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name=label,
                                     line=dict(color=PALETTE[i % len(PALETTE)])))
    return _epoch_axis(_layout(fig, title="Validation plate accuracy per epoch", x="epoch",
                               y="plates read exactly right", height=height, percent=True))


def length_histogram(hist: dict, *, height: int = 260) -> go.Figure:
    items = sorted(((int(k), int(v)) for k, v in (hist or {}).items()), key=lambda kv: kv[0])
    fig = go.Figure(go.Bar(x=[k for k, _ in items], y=[v for _, v in items], marker_color=BLUE,
                           hovertemplate="%{y} plates with %{x} characters<extra></extra>"))
    fig.update_xaxes(dtick=1)
    return _layout(fig, title="Label length", x="characters per plate", y="plates", height=height, legend=False)


def char_histogram(hist: dict, *, height: int = 260) -> go.Figure:
    items = sorted(((str(k), int(v)) for k, v in (hist or {}).items()), key=lambda kv: (-kv[1], kv[0]))
    fig = go.Figure(go.Bar(x=[k for k, _ in items], y=[v for _, v in items], marker_color=GREEN,
                           hovertemplate="'%{x}': %{y} times<extra></extra>"))
    fig.update_xaxes(type="category", dtick=1, tickfont=dict(size=10))
    return _layout(fig, title="Characters", x="character", y="times seen", height=height, legend=False)


def confusion_heatmap(frame: pd.DataFrame, *, height: int = 420) -> go.Figure:
    """`frame` has label_char, predicted_char, count (confusion.csv)."""
    table = frame.pivot_table(index="label_char", columns="predicted_char", values="count", aggfunc="sum", fill_value=0)
    chars = sorted(set(table.index) | set(table.columns), key=str)
    table = table.reindex(index=chars, columns=chars, fill_value=0)
    fig = go.Figure(go.Heatmap(
        z=table.values, x=[str(c) for c in table.columns], y=[str(c) for c in table.index],
        colorscale="Blues", hovertemplate="expected '%{y}', read '%{x}': %{z} times<extra></extra>",
    ))
    fig.update_xaxes(type="category", side="top")
    fig.update_yaxes(type="category", autorange="reversed")
    return _layout(fig, x="read as", y="expected", height=height, legend=False)


def runs_frame(runs: Iterable[dict]) -> pd.DataFrame:
    """The history table on the Runs page."""
    rows = []
    for run in runs:
        params = run.get("params") or {}
        config = run.get("config") or {}
        status = run.get("status") or {}
        settings = {k: params.get(k) if params.get(k) is not None else config.get(k)
                    for k in ("max_width", "max_height", "num_epoch", "batch_size", "initial_learning_rate", "max_minutes")}
        rows.append({
            "run": run.get("name") or run["id"],
            "id": run["id"],
            "state": run.get("state"),
            "dataset": run.get("dataset_name"),
            "started": fmt_time(run.get("created_at")),
            "preset": (params.get("preset") or "").title() or "-",
            "epochs": status.get("epoch"),
            "plate accuracy": run.get("plate_accuracy"),
            "char accuracy": run.get("char_accuracy"),
            "image size": (f"{settings['max_width']}x{settings['max_height']} px"
                           if settings["max_width"] and settings["max_height"] else "default"),
            "batch": settings["batch_size"],
            "learning rate": settings["initial_learning_rate"],
            "time budget (min)": settings["max_minutes"],
            "training time": status.get("elapsed_seconds"),
        })
    return pd.DataFrame(rows)
