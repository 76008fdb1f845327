"""A self-contained HTML report: inline base64 PNG figures, HTML tables, no network resources.

Every string that may come from an input file (system names, metric names, warnings) goes
through :func:`html.escape`.
"""

from __future__ import annotations

import base64
import datetime
import html
import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqa.errors import SqaError
from sqa.fileio import atomic_open, check_writable

STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; max-width: 1100px; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; }
table { border-collapse: collapse; margin: .5em 0 1.5em; font-size: .9em; }
th, td { border: 1px solid #bbb; padding: .25em .6em; text-align: right; }
th { background: #eee; } td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; display: block; margin: .5em 0 1.5em; }
.scroll { overflow-x: auto; } .meta td { text-align: left; } .warnings li { color: #8a3b00; }
"""


@dataclass
class Section:
    """One titled part of a report: figures (PNG bytes + alt text), tables and remarks."""

    title: str
    figures: list[tuple[bytes, str]] = field(default_factory=list)
    tables: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)
    remarks: list[str] = field(default_factory=list)


@dataclass
class Report:
    """A whole report: title, sections, and the skipped files and warnings of the run."""

    title: str
    sections: list[Section] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    command: str = field(default_factory=lambda: " ".join(["sqa", *sys.argv[1:]]))


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4g}"
    if value is None:
        return ""
    return str(value)


def render_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """An HTML table of rows (columns: the union of the rows' keys, in first-seen order)."""
    if not rows:
        return "<p>(no rows)</p>"
    columns = list(dict.fromkeys(key for row in rows for key in row))
    head = "".join(f"<th>{html.escape(str(column))}</th>" for column in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(row.get(c)))}</td>" for c in columns) + "</tr>"
        for row in rows
    )
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return f'<div class="scroll">{table}</div>'


def render_figure(png: bytes, alt: str) -> str:
    """An ``<img>`` with the PNG inline as a data URI."""
    encoded = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{encoded}" alt="{html.escape(alt)}">'


def _render_list(items: Iterable[str], css: str = "") -> str:
    entries = "".join(f"<li>{html.escape(str(item))}</li>" for item in items)
    return f'<ul class="{css}">{entries}</ul>' if entries else "<p>None.</p>"


def render_section(section: Section) -> str:
    """HTML of one section."""
    parts = [f"<section><h2>{html.escape(section.title)}</h2>"]
    parts += [f"<p>{html.escape(remark)}</p>" for remark in section.remarks]
    parts += [render_figure(png, alt) for png, alt in section.figures]
    for caption, rows in section.tables:
        parts.append(f"<h3>{html.escape(caption)}</h3>{render_table(rows)}")
    parts.append("</section>")
    return "\n".join(parts)


def _header(report: Report) -> str:
    from sqa import __version__

    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    rows = [("tool", f"sqa-suite {__version__}"), ("command", report.command), ("date", now)]
    cells = "".join(
        f"<tr><th>{name}</th><td>{html.escape(value)}</td></tr>" for name, value in rows
    )
    return f'<h1>{html.escape(report.title)}</h1><table class="meta">{cells}</table>'


def render_report(report: Report) -> str:
    """The whole page as one HTML string (no external CSS, JS, fonts or images)."""
    body = [_header(report), *(render_section(section) for section in report.sections)]
    body.append("<section><h2>Skipped files and warnings</h2>")
    body.append(f"<h3>Skipped files ({len(report.skipped)})</h3>{_render_list(report.skipped)}")
    body.append(
        f"<h3>Warnings ({len(report.warnings)})</h3>{_render_list(report.warnings, 'warnings')}"
    )
    body.append("</section>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(report.title)}</title><style>{STYLE}</style></head>"
        "<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def write_report(report: Report, path: str | Path, force: bool = False) -> Path:
    """Write the report atomically (refusing to overwrite an existing file without ``force``)."""
    destination = check_writable(path, force)
    with atomic_open(destination, "w") as handle:
        handle.write(render_report(report))
    return destination


def check_report_path(path: str | None, force: bool) -> Path | None:
    """Check a ``--report`` destination before any work: an ``.html`` file, writable."""
    if path is None:
        return None
    destination = check_writable(path, force)
    if destination.suffix.lower() not in (".html", ".htm"):
        raise SqaError(f"--report {destination}: use an .html file")
    if not destination.parent.is_dir():
        raise SqaError(f"--report {destination}: folder {destination.parent} does not exist")
    from sqa.report.figures import new_figure

    new_figure()  # a missing matplotlib fails here, before the work, not after it
    return destination
