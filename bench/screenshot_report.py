"""A report's HTML page as a reader sees it: a headless Chromium screenshot at a laptop's width.

The reference page must lead with fragment duplication, the ours-vs-published table and the
findings, keep wide tables inside the page (they scroll) and clip no figure; this script makes
the picture a person then looks at, and prints what it can check itself: the page's scroll
width against the window's (wider means a table or figure pushes the page sideways).

Usage: python bench/screenshot_report.py [reference/report/index.html] [--width 1400]
       [--height 2600] [--out results/screenshot.png]
Needs a Chromium binary (`apt-get install chromium` on Debian); none is downloaded.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")
# measures the page in the browser: document width against the window's
MEASURE = """<script>window.addEventListener('load', function () {
  document.title = 'scrollWidth=' + document.documentElement.scrollWidth +
                   ' innerWidth=' + window.innerWidth; });</script>"""


def browser() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    sys.exit("no Chromium found (tried " + ", ".join(BROWSERS) + "): apt-get install chromium")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", type=Path, nargs="?",
                        default=Path("reference/report/index.html"))
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=2600)
    parser.add_argument("--out", type=Path, default=Path("results/screenshot.png"))
    args = parser.parse_args()
    page = args.page.resolve()
    if not page.exists():
        sys.exit(f"no page {page}: run `gmd reference-table report` first")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    common = [browser(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
              f"--window-size={args.width},{args.height}"]
    subprocess.run([*common, f"--screenshot={args.out.resolve()}", page.as_uri()], check=True,
                   capture_output=True)
    # the same page with a measuring script, in a copy beside it (figures load relatively)
    with tempfile.NamedTemporaryFile("w", suffix=".html", dir=page.parent,
                                     delete=True) as measured:
        measured.write(page.read_text().replace("</body>", MEASURE + "</body>"))
        measured.flush()
        dom = subprocess.run([*common, "--dump-dom", Path(measured.name).as_uri()], check=True,
                             capture_output=True, text=True).stdout
    title = dom.split("<title>", 1)[1].split("</title>", 1)[0] if "<title>" in dom else "?"
    print(f"screenshot: {args.out} ({args.width}x{args.height})")
    print(f"page: {title}")
    widths = dict(part.split("=") for part in title.split() if "=" in part)
    if widths and int(widths["scrollWidth"]) > int(widths["innerWidth"]):
        print("the page is wider than the window: something does not fit")
        sys.exit(1)


if __name__ == "__main__":
    main()
