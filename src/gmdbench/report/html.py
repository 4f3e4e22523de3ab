"""One self-contained-looking HTML page per report folder: every markdown file of the report,
tables rendered, figures shown inline (linked relative to the page, so the folder can move)."""

from __future__ import annotations

import html
import re
from pathlib import Path

# the order sections appear in; any other markdown file follows, alphabetically
ORDER = ("comparison.md", "why_ratios.md", "active_learning.md", "table.md", "figures.md",
         "uncertainty.md", "ablation.md", "routing.md", "representations.md", "probes.md")
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222;
       padding: 0 1em; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.85em; }
td { white-space: nowrap; }
figure { margin: 1em 0; } figcaption { font-size: 0.85em; color: #555; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; margin: 0.5em 0; border: 1px solid #eee; }
h1 { border-bottom: 2px solid #444; } h2 { margin-top: 1.6em; }
th { cursor: pointer; } th:hover { background: #e4e4e4; }
"""
# every table sorts by any column on a click of its header (again: the other way); a cell is
# compared by its leading number where it has one ("0.0612 ± 0.0010" -> 0.0612), else as text
SORTING = """
document.querySelectorAll('table').forEach(function (table) {
  table.querySelectorAll('th').forEach(function (header, column) {
    header.title = 'sort by this column';
    header.addEventListener('click', function () {
      var body = table.tBodies[0];
      var rows = Array.from(body.rows);
      var ascending = header.dataset.order !== 'asc';
      header.dataset.order = ascending ? 'asc' : 'desc';
      function key(row) {
        var text = row.cells[column] ? row.cells[column].textContent.trim() : '';
        var number = parseFloat(text);
        return isNaN(number) ? text.toLowerCase() : number;
      }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (typeof x !== typeof y) { return typeof x === 'number' ? -1 : 1; }
        return (x < y ? -1 : x > y ? 1 : 0) * (ascending ? 1 : -1);
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""


_IMAGE = re.compile(r'<p><img alt="([^"]*)" src="([^"]*)" ?/?></p>')


def _wrap(fragment: str) -> str:
    """Tables scroll inside the page width (wide tables never push columns off-screen) and
    every figure gets its alt text as a caption."""
    fragment = fragment.replace("<table>", '<div class="scroll"><table>').replace(
        "</table>", "</table></div>")
    return _IMAGE.sub(lambda m: f'<figure><img alt="{m[1]}" src="{m[2]}">'
                      f"<figcaption>{m[1]}</figcaption></figure>", fragment)


def write_html(report_dir: Path, title: str = "gmd-bench report") -> Path:
    import markdown

    sources = sorted(report_dir.glob("*.md"),
                     key=lambda p: (ORDER.index(p.name) if p.name in ORDER else len(ORDER),
                                    p.name))
    shown: set[str] = set()
    body = []
    for source in sources:
        text = source.read_text()
        shown.update(part.split(")")[0] for part in text.split("](")[1:])
        body.append(_wrap(markdown.markdown(text, extensions=["tables"])))
    figures = [p for p in sorted(report_dir.glob("*.png")) if p.name not in shown]
    if figures:
        body.append("<h2>Figures</h2>")
        body += [f'<figure><img src="{html.escape(p.name)}" alt="{html.escape(p.stem)}">'
                 f"<figcaption>{html.escape(p.stem)}</figcaption></figure>" for p in figures]
    page = report_dir / "index.html"
    page.write_text(f"<!doctype html>\n<html><head><meta charset='utf-8'><title>"
                    f"{html.escape(title)}</title><style>{STYLE}</style></head><body>\n"
                    + "\n".join(body) + f"\n<script>{SORTING}</script>\n</body></html>\n")
    return page
