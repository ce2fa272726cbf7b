"""The HTML report at scale, measured in a real browser (headless Chromium via Selenium).

    python benchmarks/report_browser.py [--dir CLUSTER_DIR] [--pods 10000 --policies 2000]

Without --dir it generates the large-calico-istio cluster (benchmarks/generate.py, same
arguments as `run.py --size large-calico-istio`) into benchmarks/out/report-<pods>/. It then
measures, in fresh processes: `kubezt report DIR -o FILE` (wall time, CPU seconds of the child,
user + system, peak RSS, page size; with --repeat N the median of N runs); the page opening until
it is interactive (the script has drawn the namespace graph); drilling into the largest
namespace; and selecting a workload until its blast radius is shown. Prints a JSON line and a
Markdown table. `--no-browser` measures `kubezt report` only. The browser part needs chromium and
chromedriver (scripts/test.sh installs them).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def child(cmd: list[str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system) and peak RSS in MiB of one child process."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def browser():  # type: ignore[no-untyped-def]
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,900"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))


def until(driver, script: str, timeout: float = 120.0) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    while not driver.execute_script(script):
        if time.perf_counter() - start > timeout:
            raise SystemExit(f"timed out waiting for: {script}")
        time.sleep(0.02)
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", type=Path, help="an existing cluster dump (else one is generated)")
    ap.add_argument("--pods", type=int, default=10_000)
    ap.add_argument("--policies", type=int, default=2_000)
    ap.add_argument("--out", type=Path, default=HERE / "out")
    ap.add_argument(
        "--page", type=Path, help="measure this page in the browser only (no kubezt report run)"
    )
    ap.add_argument(
        "--repeat", type=int, default=1, help="run `kubezt report` N times, keep the median"
    )
    ap.add_argument(
        "--no-browser", action="store_true", help="measure `kubezt report` only, no browser"
    )
    args = ap.parse_args()
    directory = args.dir
    if directory is None and args.page is None:
        directory = args.out / f"report-{args.pods}"
        if not directory.is_dir():
            subprocess.run(
                [
                    sys.executable,
                    str(HERE / "generate.py"),
                    "--pods",
                    str(args.pods),
                    "--policies",
                    str(args.policies),
                    "--calico-share",
                    "0.3",
                    "--istio",
                    "--lean",
                    "--out",
                    str(directory),
                ],
                check=True,
            )
    args.out.mkdir(parents=True, exist_ok=True)
    page = args.page or args.out / "report-browser.html"
    gen_s = gen_cpu = gen_mib = 0.0
    if args.page is None:
        runs = sorted(
            child(
                [
                    sys.executable,
                    "-m",
                    "kubezt",
                    "report",
                    str(directory),
                    "-o",
                    str(page),
                    "--quiet",
                ]
            )
            for _ in range(max(1, args.repeat))
        )
        gen_s, gen_cpu, gen_mib = runs[len(runs) // 2]
    report = {
        "cluster": str(directory.name) if directory else str(page.name),
        "report_s": round(gen_s, 2),
        "report_cpu_s": round(gen_cpu, 2),
        "report_peak_mib": round(gen_mib, 1),
        "report_runs": max(1, args.repeat) if args.page is None else 0,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "page_mib": round(page.stat().st_size / 2**20, 2),
    }
    if args.no_browser:
        print_result(report)
        return 0
    driver = browser()
    try:
        start = time.perf_counter()
        driver.get(page.as_uri())
        until(driver, "return document.body && document.body.dataset.ready === '1'")
        open_s = time.perf_counter() - start
        counts = driver.execute_script(
            "return [document.querySelectorAll('#graph g.node').length,"
            " document.querySelectorAll('#graph path.edge').length]"
        )
        # drill into the namespace with the most workloads
        ns = driver.execute_script(
            "const D = JSON.parse(document.getElementById('data').textContent);"
            "const n = new Map(); for (const w of D.workloads) n.set(w[1], (n.get(w[1])||0)+1);"
            "let best = 0; for (const [k, v] of n) if (v > (n.get(best)||0)) best = k;"
            "return D.namespaces[best];"
        )
        start = time.perf_counter()
        driver.execute_script(
            f"document.querySelector('#graph g.node[data-id=\"ns:{ns}\"] circle')"
            ".dispatchEvent(new MouseEvent('click', {bubbles: true}))"
        )
        until(driver, "return document.querySelectorAll('#graph g.node.workload').length > 0")
        drill_s = time.perf_counter() - start
        start = time.perf_counter()
        driver.execute_script(
            "document.querySelector('#graph g.node.workload circle')"
            ".dispatchEvent(new MouseEvent('click', {bubbles: true}))"
        )
        until(driver, "return !!document.getElementById('blast-summary')")
        blast_s = time.perf_counter() - start
        blast = driver.execute_script("return document.getElementById('blast-summary').textContent")
        errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        driver.save_screenshot(str(args.out / "report-browser.png"))
    finally:
        driver.quit()
    result = report | {
        "open_until_interactive_s": round(open_s, 2),
        "namespace_nodes": counts[0],
        "namespace_edges": counts[1],
        "drill_down_s": round(drill_s, 2),
        "drill_namespace": ns,
        "select_workload_blast_radius_s": round(blast_s, 2),
        "blast_radius": blast,
        "console_errors": errors,
    }
    print_result(result)
    return 1 if errors else 0


def print_result(result: dict[str, object]) -> None:
    print(json.dumps(result))
    print()
    print("| measurement | value |\n|---|---|")
    for key, value in result.items():
        print(f"| {key} | {value} |")


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    sys.exit(main())
