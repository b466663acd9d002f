"""What `weit-rl compare` prints when it ends: the report's primary comparison and its table of
arms per size as plain text, then where the report and its figures are. It reads the Markdown
report itself, so the terminal says what the report says."""

from __future__ import annotations

from pathlib import Path


def terminal_summary(report: Path) -> str:
    lines = report.read_text().splitlines()
    out, section, table_wanted = [_plain(lines[0].lstrip("# "))], "", False
    rows: list[str] = []
    for line in [*lines, ""]:  # the blank line closes a table that ends the file
        if line.startswith("|"):
            rows.append(line)
            continue
        if rows and table_wanted:  # the first table after a size's heading: its arms
            out += _table(rows)
            table_wanted = False
        rows = []
        if line.startswith("## "):
            section = line[3:]
        elif section == "Primary comparison" and line:
            out += ["", "primary comparison: " + _plain(line)]
        elif section == "Results per size" and line.startswith("### "):
            out += ["", "size " + line[4:]]
            table_wanted = True
    figures = sorted(report.parent.glob(f"{report.stem}-*.png"))
    out += ["", f"report:  {report}"] + [f"figure:  {path}" for path in figures]
    return "\n".join(out)


def _plain(text: str) -> str:
    return text.replace("**", "").replace("`", "")


def _table(rows: list[str]) -> list[str]:
    """A Markdown table as aligned columns, its |---| line left out."""
    cells = [[_plain(c.strip()) for c in row.strip("|").split("|")] for row in rows if not row.startswith("|---")]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
