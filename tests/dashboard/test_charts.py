"""The SVG charts are plain functions: numbers in, markup with axes, ticks, labels and a legend out."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from learning_platform.dashboard import charts, series

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 (our own output)


def texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{SVG}text")]


def test_ticks_are_round_and_cover_the_range():
    assert charts.nice_ticks(0.123, 2.7) == [0, 1, 2, 3]
    assert charts.nice_ticks(0, 1) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert charts.nice_ticks(-3, 17, 6) == [-5, 0, 5, 10, 15, 20]
    flat = charts.nice_ticks(5, 5)
    assert flat[0] <= 5 < flat[-1]


def test_a_line_chart_has_axes_ticks_labels_a_legend_and_its_points():
    svg = charts.line_chart(
        title="Loss", x_label="step", y_label="loss",
        series=[charts.Series("training loss", [(0, 2.0), (10, 1.0), (20, 0.5)]), charts.Series("eval loss", [(10, 1.2)], markers=True)],
        bands=[charts.Band("interval", [(0, 1.5, 2.5), (20, 0.2, 0.8)])], rules=[charts.Rule("target", 0.3)],
    )  # fmt: skip
    root = parse(svg)
    labels = texts(root)
    assert {"Loss", "step", "loss", "training loss", "eval loss", "interval", "target"} <= set(labels)
    assert {"0", "10", "20"} <= set(labels)  # x ticks
    assert len(root.findall(f".//{SVG}line[@class='axis']")) == 2
    line = root.find(f".//{SVG}polyline[@class='series']")
    xs = [float(p.split(",")[0]) for p in line.get("points").split()]
    assert xs == sorted(xs)
    assert len(xs) == 3
    assert len(root.findall(f".//{SVG}circle[@class='point']")) == 1  # the one eval point
    assert root.find(f".//{SVG}polygon[@class='band']") is not None


def test_a_higher_value_is_drawn_higher_and_the_log_scale_labels_powers_of_ten():
    svg = charts.line_chart(title="p", x_label="trials", y_label="p", series=[charts.Series("p", [(1, 1.0), (50, 0.001)])], log_y=True,
                            rules=[charts.Rule("alpha", 0.05)])  # fmt: skip
    points = parse(svg).find(f".//{SVG}polyline").get("points").split()
    assert float(points[0].split(",")[1]) < float(points[1].split(",")[1])  # p = 1 is above p = 0.001
    assert {"1", "0.1", "0.01", "0.001"} <= set(texts(parse(svg)))


def test_no_data_says_so_and_text_is_escaped():
    assert "no data yet" in charts.line_chart(title="t", x_label="x", y_label="y", series=[])
    svg = charts.line_chart(title="<script>", x_label="x", y_label="y", series=[charts.Series("a&b", [(0, 1), (1, 2)])])
    assert "<script>" not in svg
    parse(svg)  # well-formed


def test_the_genealogy_tree_puts_children_below_parents_and_links_every_node():
    rows = [
        {"id": 1, "name": "base-v0", "parent_id": None, "status": "approved", "tainted": False, "champion": False, "url": "/v/1"},
        {"id": 2, "name": "base-v1", "parent_id": 1, "status": "active", "tainted": False, "champion": True, "url": "/v/2"},
        {"id": 3, "name": "base-v2", "parent_id": 1, "status": "candidate", "tainted": True, "champion": False, "url": "/v/3"},
    ]
    root = parse(series.genealogy_chart(rows, title="Genealogy"))
    links = root.findall(f".//{SVG}a")
    assert [a.get("href") for a in links] == ["/v/1", "/v/2", "/v/3"]
    y = {g.get("data-key"): float(g.find(f"{SVG}rect").get("y")) for g in root.iter(f"{SVG}g") if g.get("data-key")}
    assert y["1"] < y["2"] == y["3"]
    classes = {g.get("data-key"): g.get("class") for g in root.iter(f"{SVG}g") if g.get("data-key")}
    assert "champion" in classes["2"]
    assert "tainted" in classes["3"]
    tainted_rect = next(g for g in root.iter(f"{SVG}g") if g.get("data-key") == "3").find(f"{SVG}rect")
    assert tainted_rect.get("stroke") == charts.RED
    assert len(root.findall(f".//{SVG}path[@class='edge']")) == 2


def test_the_experiment_series_follows_the_statistics_module():
    from abtesting.statistics import always_valid_p, win_rate

    history = ["B", "A", "tie", "B", "B", "B", "A", "B"] * 5
    points = series.experiment_series(history)
    decided = [v == "B" for v in history if v != "tie"]
    last = points[-1]
    expected = win_rate(decided.count(True), decided.count(False), history.count("tie"))
    assert last["trial"] == len(history)
    assert abs(last["win_rate"] - expected.rate) < 1e-9
    assert (round(last["low"], 9), round(last["high"], 9)) == (round(expected.low, 9), round(expected.high, 9))
    assert last["p_value"] == pytest.approx(always_valid_p(decided), rel=1e-9)
    strong = ["B"] * 60 + ["A"] * 5
    assert series.experiment_series(strong)[-1]["p_value"] == pytest.approx(always_valid_p([v == "B" for v in strong]), rel=1e-9)
    assert len(series.experiment_series(["B"] * 1000)) == series.MAX_POINTS
    svg = series.win_rate_chart(points, min_win_rate=0.65)
    assert re.search(r">needed 0.65<", svg)
