"""Retake the README's dashboard screenshots (docs/images/dashboard-*.png) over SERVING_DB.

    .venv/bin/python docs/screenshots.py          # after `make run`

Starts the dashboard on a free 127.0.0.1 port, opens each view in Debian's chromium (Playwright,
as the browser tests do) and saves one PNG per view.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "docs" / "images"
VIEWS = {  # tab label -> image name, and an element that is drawn last on that view
    "911 calls": ("dashboard-calls.png", "#calls-map .main-svg"),
    "Overdoses": ("dashboard-overdoses.png", "#outcomes-by-csa .main-svg"),
    "Neighborhood health": ("dashboard-health.png", "#health-map .main-svg"),
    "Surveillance": ("dashboard-surveillance.png", "#csa-heatmap .main-svg"),
}


def main() -> int:
    from playwright.sync_api import sync_playwright

    from orchestration.dashboard.process import running_dashboard

    with running_dashboard() as dashboard:
        url = dashboard.url
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url, wait_until="networkidle")
            for tab, (name, last) in VIEWS.items():
                page.get_by_text(tab, exact=True).click()
                page.wait_for_selector(last)
                page.wait_for_load_state("networkidle")
                page.screenshot(path=str(IMAGES / name), full_page=True)
                print(IMAGES / name)
            browser.close()
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
