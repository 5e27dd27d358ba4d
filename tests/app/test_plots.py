"""Server-side SVG plots: valid XML, accessible names, one mark per candidate."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from app import plots

SVG = "{http://www.w3.org/2000/svg}"


def _check_accessible(svg: str, plot_id: str) -> ET.Element:
    root = ET.fromstring(svg)  # raises on invalid XML
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
    assert title is not None and desc is not None
    assert root.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
    assert title.get("id") == f"{plot_id}-title" and (desc.text or "").strip()
    return root


def _marks(root: ET.Element) -> list[ET.Element]:
    return [g for g in root.iter(f"{SVG}g") if g.get("class") == "mark"]


def test_forest_plot_is_valid_accessible_svg_with_one_mark_per_row() -> None:
    rows = [
        plots.ForestRow("69123", "Lyon & <Rhône>", 74.0, 69.0, 79.0, "laureate"),
        plots.ForestRow("75056", "Paris", 72.0, 68.0, 76.0, "top1"),
        plots.ForestRow("13055", "Marseille", 60.0, None, None),
    ]
    svg = plots.forest_plot(
        rows, plot_id="forest", title="Forest", desc="3 candidates, median 72.", reference=72.0
    )
    root = _check_accessible(svg, "forest")
    marks = _marks(root)
    assert [m.get("data-key") for m in marks] == ["69123", "75056", "13055"]
    assert "Lyon & <Rhône>: 74.0 [69.0 ; 79.0]" in [m.find(f"{SVG}title").text for m in marks]  # type: ignore[union-attr]
    assert root.find(f".//{SVG}line[@class='reference']") is not None
    assert "style=" not in svg and "<script" not in svg  # strict CSP


def test_funnel_plot_draws_points_and_both_limits() -> None:
    points = [plots.FunnelPoint(str(i), f"C{i}", 60 + i, 1 + i / 10) for i in range(12)]
    curves = [
        plots.FunnelCurve(
            level,
            [1.0, 1.5, 2.5],
            [60 - z, 60 - 1.5 * z, 60 - 2.5 * z],
            [60 + z, 60 + 1.5 * z, 60 + 2.5 * z],
        )
        for level, z in ((0.95, 1.96), (0.998, 3.09))
    ]
    svg = plots.funnel_plot(
        points, curves, target=60.0, plot_id="funnel", title="Funnel", desc="12 candidates"
    )
    root = _check_accessible(svg, "funnel")
    assert len(_marks(root)) == 12
    levels = {p.get("data-level") for p in root.iter(f"{SVG}polyline")}
    assert levels == {"0.95", "0.998"}


def test_distribution_plot_has_one_box_per_group() -> None:
    boxes = [
        plots.BoxRow("national", "All", 40, 55, 62, 70, 85, 200),
        plots.BoxRow("big", "Big towns", 50, 60, 65, 72, 80, 16, marker=74.0),
    ]
    svg = plots.distribution_plot(boxes, plot_id="dist", title="Distribution", desc="Two groups")
    root = _check_accessible(svg, "dist")
    assert len(_marks(root)) == 2
    assert len([p for p in root.iter(f"{SVG}path") if p.get("class") == "marker"]) == 1


def test_a_cut_bound_ends_in_an_open_arrowhead_and_says_so() -> None:
    rows = [
        plots.ForestRow("69123", "Lyon", 96.0, 88.0, 100.0, cut_high=True),
        plots.ForestRow("75056", "Paris", 4.0, 0.0, 12.0, cut_low=True),
        plots.ForestRow("13055", "Marseille", 60.0, 50.0, 70.0),
    ]
    svg = plots.forest_plot(
        rows, plot_id="cut", title="Cut", desc="Cut bounds.", cut_note="cut at the scale's edge"
    )
    root = _check_accessible(svg, "cut")
    arrows = {
        mark.get("data-key"): mark.findall(f"{SVG}path[@class='cut']") for mark in _marks(root)
    }
    assert [len(arrows[key]) for key in ("69123", "75056", "13055")] == [1, 1, 0]
    titles = {m.get("data-key"): m.find(f"{SVG}title").text for m in _marks(root)}  # type: ignore[union-attr]
    assert titles["69123"].endswith("(cut at the scale's edge)")  # type: ignore[union-attr]
    assert "cut" not in titles["13055"]  # type: ignore[operator]
    # The arrowheads point off the scale: right at 100, left at 0.
    high, low = arrows["69123"][0].get("d") or "", arrows["75056"][0].get("d") or ""
    assert float(high.split()[2].lstrip("L")) > float(high.split()[0].lstrip("M"))
    assert float(low.split()[2].lstrip("L")) < float(low.split()[0].lstrip("M"))
