"""The HTML report in a real browser (headless Chromium): it loads without console errors, the
graph shows the bundled example's namespaces and edges as the engine computes them, clicking a
workload shows its blast radius hop by hop, the filters hide what they should, an edge explains
itself, and the diff page marks the changed edges. Expected values come from the library (the
same evaluator every command uses) and tests/cases/report/shop.yaml."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

import kubezt
from kubezt.cli.main import app
from kubezt.engine.outside import Outside, evaluate_outside

ROOT = Path(__file__).resolve().parents[2]
CASE = yaml.safe_load((ROOT / "tests/cases/report/shop.yaml").read_text(encoding="utf-8"))
EXAMPLE = str(ROOT / CASE["example"])
runner = CliRunner()


def ns(workload: str) -> str:
    """The namespace of a workload; an outside cell (`external:CIDR`) is its own node."""
    return workload if workload.startswith("external:") else workload.split("/")[0]


@pytest.fixture(scope="module")
def reach() -> kubezt.Reachability:
    return kubezt.evaluate(kubezt.load([EXAMPLE]).model)


@pytest.fixture(scope="module")
def outside(reach: kubezt.Reachability) -> Outside:
    return evaluate_outside(reach.input_model)


def _diff_page(
    base: Path, name: str, case: dict[str, str], *, to_old: bool = False
) -> tuple[Path, Path]:
    """The diff page of the example and a copy with `case` appended (as NEW, or as OLD)."""
    new = base / name
    shutil.copytree(EXAMPLE, new)
    with (new / case["file"]).open("a", encoding="utf-8") as fh:
        fh.write(case["append"])
    sides = [str(new), EXAMPLE] if to_old else [EXAMPLE, str(new)]
    result = runner.invoke(app, ["diff", *sides, "-o", "html"])
    # 1: something newly allowed; NEW = the example only closes what OLD opened
    assert result.exit_code == (0 if to_old else 1), result.output[-2000:]
    page = base / f"{name}.html"
    page.write_text(result.stdout, encoding="utf-8")
    return new, page


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("report")
    report = base / "shop.html"
    with contextlib.chdir(ROOT):  # the page names the input as given: examples/shop
        result = runner.invoke(app, ["report", CASE["example"], "-o", str(report), "--quiet"])
    assert result.exit_code == 0, result.output
    new, diff = _diff_page(base, "pr", CASE["diff"])
    new_outside, diff_outside = _diff_page(base, "pr-outside", CASE["diff_outside"])
    old_cell, diff_cell = _diff_page(base, "pr-cell", CASE["diff_removed_cell"], to_old=True)
    return {
        "report": report,
        "diff": diff,
        "new": new,
        "diff-outside": diff_outside,
        "new-outside": new_outside,
        "diff-cell": diff_cell,
        "old-cell": old_cell,
    }


def open_page(browser: Any, path: Path) -> None:
    browser.get(path.as_uri())
    browser.get_log("browser")  # drop what an earlier page logged
    browser.refresh()
    wait_ready(browser)


def wait_ready(browser: Any) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 20).until(
        lambda d: d.execute_script("return document.body.dataset.ready === '1'")
    )


def css(browser: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(browser.find_elements(By.CSS_SELECTOR, selector))


def tab(browser: Any, name: str) -> None:
    css(browser, f"#tab-{name}")[0].click()


def edges(browser: Any) -> list[tuple[str, str, str, str]]:
    return [
        (
            e.get_attribute("data-src"),
            e.get_attribute("data-dst"),
            e.get_attribute("data-status"),
            e.get_attribute("data-changed") or "",
        )
        for e in css(browser, "#graph path.edge")
    ]


def severe(browser: Any) -> list[str]:
    return [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]


def test_report_loads_offline_without_console_errors(
    browser: Any, pages: dict[str, Path], screenshot: Any
) -> None:
    text = pages["report"].read_text(encoding="utf-8")
    assert "<script src" not in text and '<link rel="stylesheet"' not in text
    assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in text
    open_page(browser, pages["report"])
    assert severe(browser) == []
    screenshot(browser, "report-graph")
    for view in ("matrix", "findings", "blast"):
        tab(browser, view)
        screenshot(browser, f"report-{view}")
    assert severe(browser) == []


def test_graph_shows_every_namespace_and_the_engines_edges(
    browser: Any, pages: dict[str, Path], reach: kubezt.Reachability, outside: Outside
) -> None:
    open_page(browser, pages["report"])
    nodes = {n.get_attribute("data-id") for n in css(browser, "#graph g.node")}
    cells = {f"ns:{cell.label}" for cell in outside.cells}
    assert len(cells) > 1
    assert nodes == {f"ns:{n}" for n in CASE["namespaces"]} | cells
    drawn = edges(browser)
    allowed = {(a, b) for a, b, status, _ in drawn if status in ("allow", "partial")}
    expected = {
        (f"ns:{ns(s)}", f"ns:{ns(d)}") for s, d, _, _ in reach.connections() if ns(s) != ns(d)
    }
    assert {(a, b) for a, b in allowed if "external:" not in a + b} == expected
    # every outside cell is its own node, joined to the namespaces it reaches or admits
    crossing = {(f"ns:{ns(c.src)}", f"ns:{ns(c.dst)}") for c in outside.connections()}
    assert crossing
    assert {(a, b) for a, b in allowed if "external:" in a + b} == crossing
    statuses = {(a, b): status for a, b, status, _ in drawn}
    for edge in CASE["edges"]:
        assert statuses[(f"ns:{edge['src']}", f"ns:{edge['dst']}")] == edge["status"], edge


@pytest.mark.parametrize("workload", CASE["blast"])
def test_clicking_a_workload_shows_its_blast_radius_hop_by_hop(
    browser: Any,
    pages: dict[str, Path],
    reach: kubezt.Reachability,
    screenshot: Any,
    workload: str,
) -> None:
    open_page(browser, pages["report"])
    css(browser, f'#graph g.node[data-id="ns:{ns(workload)}"] circle')[0].click()
    css(browser, f'#graph g.node[data-id="{workload}"] circle')[0].click()
    expected = kubezt.blast_radius(reach, workload)
    shown = {
        li.get_attribute("data-id"): int(
            li.find_element("xpath", "ancestor::div[@data-hop]").get_attribute("data-hop")
        )
        for li in css(browser, "#panel li.reached-workload")
    }
    assert shown == {r.workload: r.hop for r in expected.reached}
    reached = {n.get_attribute("data-id") for n in css(browser, "#graph g.node.reached")}
    assert reached == {r.workload for r in expected.reached if ns(r.workload) == ns(workload)}
    screenshot(browser, f"report-blast-{workload.replace('/', '-')}")


def test_clicking_an_edge_shows_its_explanation(browser: Any, pages: dict[str, Path]) -> None:
    open_page(browser, pages["report"])
    edge = next(
        e
        for e in css(browser, "#graph path.edge")
        if (e.get_attribute("data-src"), e.get_attribute("data-dst"))
        == ("ns:storefront", "ns:shop")
    )
    browser.execute_script(
        "arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))", edge
    )
    rows = [r for r in css(browser, "#edge-list tr.clickable") if "denied by mTLS" in r.text]
    assert rows
    rows[0].click()
    panel = css(browser, "#panel")[0].text
    assert "denied by mTLS" in panel
    assert "[peer-authentication]" in panel
    assert "kubezt explain storefront/web shop/" in panel
    assert panel.rstrip().endswith(CASE["example"])
    assert severe(browser) == []


@pytest.mark.parametrize("case", [f for f in CASE["filters"] if "namespace" in f])
def test_namespace_filter_hides_other_rows(
    browser: Any, pages: dict[str, Path], case: dict[str, Any]
) -> None:
    open_page(browser, pages["report"])
    tab(browser, "matrix")
    assert len(css(browser, "#heatmap tr[data-ns]")) == len(CASE["namespaces"])
    css(browser, "#f-ns")[0].send_keys(case["namespace"])
    rows = [r.get_attribute("data-ns") for r in css(browser, "#heatmap tr[data-ns]")]
    assert rows == case["rows"]


@pytest.mark.parametrize("case", [f for f in CASE["filters"] if "layer" in f])
def test_layer_filter_leaves_only_that_layer(
    browser: Any, pages: dict[str, Path], case: dict[str, Any], screenshot: Any
) -> None:
    from selenium.webdriver.support.ui import Select

    open_page(browser, pages["report"])
    before = edges(browser)
    Select(css(browser, "#f-layer")[0]).select_by_value(case["layer"])
    after = edges(browser)
    assert after, "the example has edges of this layer"
    assert {status for _, _, status, _ in after} == {case["layer"]}
    assert len(after) < len(before)
    screenshot(browser, f"report-filter-{case['layer']}")


def test_diff_page_marks_the_changed_edges(
    browser: Any, pages: dict[str, Path], reach: kubezt.Reachability, screenshot: Any
) -> None:
    new = kubezt.evaluate(kubezt.load([str(pages["new"])]).model)
    changed = kubezt.diff(reach, new)
    opened = {(s, d) for s, d, c in changed.changes() if c.kind.opens}
    assert opened
    open_page(browser, pages["diff"])
    assert severe(browser) == []
    rows = css(browser, "#change-table tr.change")
    assert len(rows) == len(list(changed.changes()))
    screenshot(browser, "diff-changes")
    tab(browser, "graph")
    for namespace in sorted({ns(s) for s, _ in opened}):
        css(browser, f'#graph g.node[data-id="ns:{namespace}"] circle')[0].click()
        marked = {(a, b) for a, b, _, ch in edges(browser) if ch == "opened"}
        assert marked == {(s, d) for s, d in opened if ns(s) == namespace == ns(d)}
        screenshot(browser, f"diff-graph-{namespace}")


def test_clicking_an_outside_edge_explains_it_for_the_cells_address(
    browser: Any, pages: dict[str, Path], outside: Outside
) -> None:
    open_page(browser, pages["report"])
    cell = next(c for c in outside.cells if c.label == "external:0.0.0.0/0")
    edge = next(
        e
        for e in css(browser, "#graph path.edge")
        if (e.get_attribute("data-src"), e.get_attribute("data-dst"))
        == (f"ns:{cell.label}", "ns:storefront")
    )
    browser.execute_script(
        "arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))", edge
    )
    rows = css(browser, "#edge-list tr.clickable")
    assert rows and all("allowed" in r.text for r in rows)
    rows[0].click()
    panel = css(browser, "#panel")[0].text
    assert f"kubezt explain external:{cell.representative} storefront/" in panel
    assert "ingress" in panel and "allowed" in panel
    assert severe(browser) == []


def test_diff_page_marks_the_newly_allowed_outside_edges(
    browser: Any, pages: dict[str, Path], reach: kubezt.Reachability, screenshot: Any
) -> None:
    new = kubezt.evaluate(kubezt.load([str(pages["new-outside"])]).model)
    changed = kubezt.diff(reach, new)
    opened = {(s, d) for s, d, c in changed.changes() if c.kind.opens}
    assert ("external:0.0.0.0/0", "default/httpbin") in opened
    assert all(s.startswith("external:") for s, _ in opened)
    open_page(browser, pages["diff-outside"])
    assert severe(browser) == []
    tab(browser, "graph")
    marked = {(a, b) for a, b, _, ch in edges(browser) if ch == "opened"}
    assert marked == {(f"ns:{ns(s)}", f"ns:{ns(d)}") for s, d in opened}
    css(browser, '#graph g.node[data-id="ns:default"] circle')[0].click()
    marked = {(a, b) for a, b, _, ch in edges(browser) if ch == "opened"}
    assert marked == {(f"ns:{s}", d) for s, d in opened}
    screenshot(browser, "diff-graph-outside")


def test_diff_page_draws_a_cell_only_old_names_with_its_newly_denied_edges(
    browser: Any, pages: dict[str, Path], reach: kubezt.Reachability
) -> None:
    old = kubezt.evaluate(kubezt.load([str(pages["old-cell"])]).model)
    changed = kubezt.diff(old, reach)
    closed = {(s, d) for s, d, c in changed.changes() if not c.kind.opens}
    assert ("external:198.51.100.0/24", "default/httpbin") in closed
    assert not [c for c in changed.changes() if c[2].kind.opens]
    open_page(browser, pages["diff-cell"])
    assert severe(browser) == []
    tab(browser, "graph")
    nodes = {n.get_attribute("data-id") for n in css(browser, "#graph g.node")}
    assert "ns:external:198.51.100.0/24" in nodes
    css(browser, '#graph g.node[data-id="ns:default"] circle')[0].click()
    marked = {(a, b) for a, b, _, ch in edges(browser) if ch == "closed"}
    assert marked == {(f"ns:{s}", d) for s, d in closed}
