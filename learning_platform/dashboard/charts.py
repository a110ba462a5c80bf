"""Server-side SVG charts: plain numbers in, an SVG string out (no Django, no JavaScript).

Every chart has a title, axes with ticks and labels, and a legend; a line chart may carry
shaded bands (a confidence interval) and horizontal rules (a threshold such as alpha). The tree
chart draws a genealogy: parents above children, each node a link. Text is escaped here, so
the result may be marked safe by the caller.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

PALETTE = ("#417690", "#e07b00", "#2e8b57", "#8e44ad", "#c0392b", "#7f8c8d", "#b8860b", "#1f77b4")
RED = "#ba2121"
GOLD = "#d4a017"
FONT = 'font-family="-apple-system,Segoe UI,Roboto,sans-serif" font-size="11"'


@dataclass(frozen=True)
class Series:
    label: str
    points: Sequence[tuple[float, float]]
    color: str = ""
    dashed: bool = False
    markers: bool = False


@dataclass(frozen=True)
class Band:
    """A shaded area between `low` and `high` at each x: (x, low, high)."""

    label: str
    points: Sequence[tuple[float, float, float]]
    color: str = PALETTE[0]


@dataclass(frozen=True)
class Rule:
    """A horizontal reference line at `y`."""

    label: str
    y: float
    color: str = RED


@dataclass(frozen=True)
class Frame:
    """Where the plot area sits in the SVG and which values its edges stand for."""

    width: int
    height: int
    x_range: tuple[float, float]
    y_range: tuple[float, float]
    log_y: bool = False
    left: int = 58
    right: int = 16
    top: int = 30
    bottom: int = 62

    def x(self, value: float) -> float:
        low, high = self.x_range
        return self.left + (value - low) / ((high - low) or 1.0) * (self.width - self.left - self.right)

    def y(self, value: float) -> float:
        low, high = self.y_range
        value = _log(value) if self.log_y else value
        share = (min(max(value, low), high) - low) / ((high - low) or 1.0)
        return self.height - self.bottom - share * (self.height - self.top - self.bottom)


def _log(value: float) -> float:
    return math.log10(max(value, 1e-12))


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (steps of 1, 2 or 5 times a power of ten)."""
    if not math.isfinite(low) or not math.isfinite(high):
        return [0.0]
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step) * step
    ticks = [round(start, 10)]
    while ticks[-1] < high - step * 1e-9:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def _fmt(value: float) -> str:
    if value != 0 and (abs(value) >= 10000 or abs(value) < 0.001):
        return f"{value:.0e}"
    return f"{value:.4g}"


def _ranges(series: Sequence[Series], bands: Sequence[Band], rules: Sequence[Rule], log_y: bool) -> tuple[list[float], list[float]]:
    xs = [p[0] for s in series for p in s.points] + [p[0] for b in bands for p in b.points]
    ys = [p[1] for s in series for p in s.points] + [v for b in bands for p in b.points for v in p[1:]] + [r.y for r in rules]
    if log_y:
        ys = [_log(v) for v in ys]
    return xs, ys


def _axes(frame: Frame, x_ticks: list[float], y_ticks: list[float], x_label: str, y_label: str) -> list[str]:
    left, bottom = frame.left, frame.height - frame.bottom
    parts = [f'<line class="axis" x1="{left}" y1="{frame.top}" x2="{left}" y2="{bottom}" stroke="#333"/>',
             f'<line class="axis" x1="{left}" y1="{bottom}" x2="{frame.width - frame.right}" y2="{bottom}" stroke="#333"/>']  # fmt: skip
    for tick in x_ticks:
        x = frame.x(tick)
        parts.append(f'<line x1="{x:.1f}" y1="{bottom}" x2="{x:.1f}" y2="{bottom + 4}" stroke="#333"/>')
        parts.append(f'<text class="tick" x="{x:.1f}" y="{bottom + 15}" text-anchor="middle">{_fmt(tick)}</text>')
    for tick in y_ticks:
        y = frame.y(10**tick if frame.log_y else tick)
        label = _fmt(10**tick) if frame.log_y else _fmt(tick)
        parts.append(f'<line x1="{left - 4}" y1="{y:.1f}" x2="{frame.width - frame.right}" y2="{y:.1f}" stroke="#eee"/>')
        parts.append(f'<text class="tick" x="{left - 6}" y="{y + 3.5:.1f}" text-anchor="end">{label}</text>')
    middle_x = (left + frame.width - frame.right) / 2
    middle_y = (frame.top + bottom) / 2
    parts.append(f'<text class="axis-label" x="{middle_x:.1f}" y="{bottom + 30}" text-anchor="middle">{escape(x_label)}</text>')
    parts.append(
        f'<text class="axis-label" x="14" y="{middle_y:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 14 {middle_y:.1f})">{escape(y_label)}</text>'
    )
    return parts


def _legend(frame: Frame, entries: list[tuple[str, str, str]]) -> list[str]:
    """entries: (label, color, kind) with kind line, dashed, band or dot."""
    parts, x, y = ['<g class="legend">'], float(frame.left), frame.height - 10
    for label, color, kind in entries:
        if kind == "band":
            parts.append(f'<rect x="{x:.1f}" y="{y - 8}" width="16" height="9" fill="{color}" opacity="0.2"/>')
        elif kind == "dot":
            parts.append(f'<circle cx="{x + 8:.1f}" cy="{y - 4}" r="3.5" fill="{color}"/>')
        else:
            dash = ' stroke-dasharray="5 3"' if kind == "dashed" else ""
            parts.append(f'<line x1="{x:.1f}" y1="{y - 4}" x2="{x + 16:.1f}" y2="{y - 4}" stroke="{color}" stroke-width="2"{dash}/>')
        parts.append(f'<text x="{x + 20:.1f}" y="{y}">{escape(label)}</text>')
        x += 34 + 6.2 * len(label)
    parts.append("</g>")
    return parts


def _svg(frame: Frame, title: str, body: list[str], chart_id: str) -> str:
    ident = f' id="{escape(chart_id)}"' if chart_id else ""
    return (
        f'<svg class="chart" role="img"{ident} viewBox="0 0 {frame.width} {frame.height}" width="{frame.width}" '
        f'height="{frame.height}" {FONT} xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(title)}</title>"
        f'<rect x="0" y="0" width="{frame.width}" height="{frame.height}" fill="#fff"/>'
        f'<text class="chart-title" x="{frame.left}" y="18" font-size="13" font-weight="bold">{escape(title)}</text>'
        + "".join(body)
        + "</svg>"
    )


def empty_chart(title: str, message: str, *, width: int = 640, height: int = 120) -> str:
    frame = Frame(width, height, (0, 1), (0, 1))
    body = [f'<text class="empty" x="{width / 2}" y="{height / 2 + 8}" text-anchor="middle" fill="#777">{escape(message)}</text>']
    return _svg(frame, title, body, "")


def _series_parts(frame: Frame, series: Sequence[Series], index: int) -> list[str]:
    parts = []
    for offset, s in enumerate(series):
        color = s.color or PALETTE[(index + offset) % len(PALETTE)]
        coords = [(frame.x(x), frame.y(y)) for x, y in s.points]
        if len(coords) > 1:
            dash = ' stroke-dasharray="5 3"' if s.dashed else ""
            line = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
            parts.append(f'<polyline class="series" data-label="{escape(s.label)}" fill="none" stroke="{color}" '
                         f'stroke-width="2"{dash} points="{line}"/>')  # fmt: skip
        if s.markers or len(coords) == 1:
            parts += [f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"/>' for x, y in coords]
    return parts


def line_chart(
    *,
    title: str,
    x_label: str,
    y_label: str,
    series: Sequence[Series],
    bands: Sequence[Band] = (),
    rules: Sequence[Rule] = (),
    width: int = 640,
    height: int = 260,
    y_floor: float | None = None,
    y_ceiling: float | None = None,
    log_y: bool = False,
    chart_id: str = "",
    empty: str = "no data yet",
) -> str:
    """Lines (with optional markers), shaded bands and horizontal rules on shared axes."""
    xs, ys = _ranges(series, bands, rules, log_y)
    if not xs:
        return empty_chart(title, empty, width=width)
    low_y = min(ys) if y_floor is None else (_log(y_floor) if log_y else y_floor)
    high_y = max(ys) if y_ceiling is None else (_log(y_ceiling) if log_y else y_ceiling)
    y_ticks = [float(t) for t in range(math.floor(low_y), math.ceil(high_y) + 1)] if log_y else nice_ticks(low_y, high_y)
    x_ticks = nice_ticks(min(xs), max(xs), 6)
    frame = Frame(width, height, (x_ticks[0], x_ticks[-1]), (y_ticks[0], y_ticks[-1]), log_y=log_y)
    body = _axes(frame, x_ticks, y_ticks, x_label, y_label)
    legend: list[tuple[str, str, str]] = []
    for band in bands:
        upper = " ".join(f"{frame.x(x):.1f},{frame.y(h):.1f}" for x, _, h in band.points)
        lower = " ".join(f"{frame.x(x):.1f},{frame.y(lo):.1f}" for x, lo, _ in reversed(band.points))
        body.append(f'<polygon class="band" fill="{band.color}" opacity="0.2" points="{upper} {lower}"/>')
        legend.append((band.label, band.color, "band"))
    for rule in rules:
        y = frame.y(rule.y)
        body.append(f'<line class="rule" x1="{frame.left}" y1="{y:.1f}" x2="{width - frame.right}" y2="{y:.1f}" '
                    f'stroke="{rule.color}" stroke-dasharray="4 3"/>')  # fmt: skip
        legend.append((rule.label, rule.color, "dashed"))
    body += _series_parts(frame, series, 0)
    for offset, s in enumerate(series):
        kind = "dot" if len(s.points) == 1 or (s.markers and len(s.points) < 2) else ("dashed" if s.dashed else "line")
        legend.append((s.label, s.color or PALETTE[offset % len(PALETTE)], kind))
    return _svg(frame, title, body + _legend(frame, legend), chart_id)


@dataclass
class Node:
    """A version in a genealogy: `parent` names another node's key (or None for a root)."""

    key: int
    label: str
    parent: int | None = None
    url: str = ""
    champion: bool = False
    tainted: bool = False
    note: str = ""
    children: list[Node] = field(default_factory=list)


NODE_W, NODE_H, GAP_X, GAP_Y = 150, 34, 18, 34


def _layout(roots: list[Node]) -> dict[int, tuple[float, int]]:
    """x (in slots) and depth of every node: leaves side by side, parents over their children."""
    places: dict[int, tuple[float, int]] = {}
    next_slot = [0.0]

    def place(node: Node, depth: int) -> float:
        if not node.children:
            slot = next_slot[0]
            next_slot[0] += 1
        else:
            spots = [place(child, depth + 1) for child in node.children]
            slot = (spots[0] + spots[-1]) / 2
        places[node.key] = (slot, depth)
        return slot

    for root in roots:
        place(root, 0)
    return places


def _link_tree(nodes: Sequence[Node]) -> list[Node]:
    by_key = {n.key: n for n in nodes}
    for node in nodes:
        node.children = []
    roots: list[Node] = []
    for node in nodes:
        parent = by_key.get(node.parent) if node.parent is not None else None
        (parent.children if parent is not None else roots).append(node)
    return roots


def _node_parts(node: Node, x: float, y: float) -> list[str]:
    stroke, fill, width = ("#555", "#f4f8fa", 1)
    if node.tainted:
        stroke, fill, width = RED, "#fbe3e3", 2
    if node.champion:
        stroke, width = (RED if node.tainted else GOLD), 3
    classes = "node" + (" champion" if node.champion else "") + (" tainted" if node.tainted else "")
    label = ("★ " if node.champion else "") + node.label + (" ⚠" if node.tainted else "")
    short = label if len(label) <= 24 else label[:11] + "…" + label[-11:]
    rect = (f'<rect x="{x:.1f}" y="{y:.1f}" width="{NODE_W}" height="{NODE_H}" rx="5" fill="{fill}" stroke="{stroke}" '
            f'stroke-width="{width}"/>')  # fmt: skip
    texts = (f'<text x="{x + NODE_W / 2:.1f}" y="{y + 14:.1f}" text-anchor="middle">{escape(short)}</text>'
             f'<text x="{x + NODE_W / 2:.1f}" y="{y + 27:.1f}" text-anchor="middle" fill="#666" font-size="10">'
             f"{escape(node.note)}</text>")  # fmt: skip
    tip = f"<title>{escape(label)}{' — ' + escape(node.note) if node.note else ''}</title>"
    inner = f'<g class="{classes}" data-key="{node.key}">{tip}{rect}{texts}</g>'
    return [f'<a href="{escape(node.url)}">{inner}</a>' if node.url else inner]


def tree_chart(nodes: Sequence[Node], *, title: str, chart_id: str = "") -> str:
    """The genealogy as a tree: parent -> child edges, the champion gold, tainted nodes red."""
    if not nodes:
        return empty_chart(title, "no versions yet")
    roots = _link_tree(nodes)
    places = _layout(roots)
    slots = max(x for x, _ in places.values()) + 1
    depth = max(d for _, d in places.values()) + 1
    width = int(max(slots * (NODE_W + GAP_X) + GAP_X, 360))
    height = int(depth * (NODE_H + GAP_Y) + 40 + 28)
    frame = Frame(width, height, (0, 1), (0, 1), left=GAP_X)

    def corner(key: int) -> tuple[float, float]:
        slot, level = places[key]
        return GAP_X + slot * (NODE_W + GAP_X), 30 + level * (NODE_H + GAP_Y)

    edges, boxes = [], []
    for node in nodes:
        x, y = corner(node.key)
        for child in node.children:
            cx, cy = corner(child.key)
            edges.append(f'<path class="edge" d="M{x + NODE_W / 2:.1f},{y + NODE_H} C{x + NODE_W / 2:.1f},{y + NODE_H + GAP_Y / 2} '
                         f'{cx + NODE_W / 2:.1f},{cy - GAP_Y / 2} {cx + NODE_W / 2:.1f},{cy}" fill="none" stroke="#999"/>')  # fmt: skip
        boxes += _node_parts(node, x, y)
    legend = _legend(frame, [("★ champion", GOLD, "line"), ("⚠ tainted (never serves)", RED, "line"), ("parent → child", "#999", "line")])
    return _svg(frame, title, edges + boxes + legend, chart_id)
