"""Numbers that hand-written notes state as results are in the data they come from (project rule:
numbers in hand-written notes are generated from the data or checked against it by a test).

Notes: README.md outside its generated block, reports/README.md, each reports/<study>/README.md not
written by a command. Checked: decimals (0.627, 1.57x), numbers with thousands separators (3,280.4)
and percentages outside code and link targets; not bare integers (seeds, steps, sizes, dates). One
is supported when a number of the note's data rounds to it ("~7,000": to its last non-zero digit).
Data: .md/.json/.jsonl/.csv files (not READMEs) under the note's folder (AREAS for the top notes)
and the paths in AREAS it names, runs/ included; means over seeds 0..n-1 of reports' per-run rows;
settings (numbers in configs/**/*.yaml, docs/). An interval "+0.291 [+0.210, +0.371]" must stand
whole on one line of a report (or mirrored): a strong check; a single number is a weak one.
"""

import bisect
import re
from functools import cache
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
REPORTS = ROOT / "reports"
AREAS = (REPORTS, ROOT / "experts", ROOT / "banks")  # where data lives
DATA = {".md", ".json", ".jsonl", ".csv"}
GENERATED = re.compile(r"Written by `|never edited by hand")  # in a generated note's first lines
NUM = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
SEPARATED = re.compile(r"(?<![\d.,])-?\d{1,3}(?:,\d{3})+(?:\.\d+)?(?!\d|,\d)")
N = r"[-+]?(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+\.\d+)(?!\d|\.\d|[\w.]\d)"  # not versions, not 1.8e8
PROSE = re.compile(rf"(?<![\w.,])(~|about )?({N}|\d+(?=%))(%?)")
INTERVAL = re.compile(rf"(?<![\w.,])({N})x?\s+\[({N}),\s+({N})\]")
PATH_REF = re.compile(r"[\w.-]*\w/[\w./-]*|[\w.-]+\.(?:md|json|csv)")
RUN_ROW = re.compile(r"^\| (\S+)-s(\d+) \|(.*)\|$", re.M)  # | ppo-small-weit-s0 | 0.266 | 0.086 |

ALLOWED = {  # (note, number) -> why no file of the repository holds it, yet it may stay
    ("README.md", n): "rl-zoo3's published SAC benchmark (external; configs/ hold only its PPO references)"
    for n in ("9,535", "3,863", "2,326", "4,615")
}


def numbers(text: str, separators: bool = True) -> list[float]:
    """Every number of the text; with `separators` also those written 3,280.4 (not in CSV)."""
    plain = [float(m) for m in NUM.findall(text)]
    return plain + [float(m.replace(",", "")) for m in SEPARATED.findall(text)] if separators else plain


def seed_means(text: str) -> list[float]:
    """Means over seeds 0..n-1 of each per-run column, as notes written mid-study quote them."""
    runs: dict[str, dict[int, list[str]]] = {}
    for run, seed, cells in RUN_ROW.findall(text):
        runs.setdefault(run, {})[int(seed)] = [cell.strip().replace(",", "") for cell in cells.split("|")]
    firsts = [[seeds.get(s) for s in range(n)] for seeds in runs.values() for n in range(2, len(seeds) + 1)]
    columns = [col for rows in firsts if all(rows) for col in zip(*rows)]
    return [sum(map(float, col)) / len(col) for col in columns if all(NUM.fullmatch(cell) for cell in col)]


@cache
def file_numbers(path: Path) -> tuple[float, ...]:
    return tuple(numbers(text := path.read_text(), path.suffix != ".csv") + seed_means(text))


@cache
def interval_lines(path: Path) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(numbers(line)) for line in path.read_text().splitlines() if "[" in line)


def setting_values(node: object) -> list[float]:
    """The numbers of a parsed YAML file ("1e-4", "auto_0.05" too; not its comments or prose)."""
    if isinstance(node, dict):
        node = [*node, *node.values()]
    if isinstance(node, list):
        return [v for item in node for v in setting_values(item)]
    if isinstance(node, str):
        return numbers(node) if len(node) < 40 else []
    return [float(node)] if isinstance(node, int | float) and not isinstance(node, bool) else []


@cache
def settings() -> tuple[float, ...]:
    docs = [n for path in sorted((ROOT / "docs").glob("*.md")) for n in numbers(path.read_text())]
    configs = sorted((ROOT / "configs").rglob("*.yaml"))
    return tuple(docs + [v for path in configs for v in setting_values(yaml.safe_load(path.read_text()))])


def hand_written_notes() -> list[Path]:
    notes = [ROOT / "README.md", REPORTS / "README.md", *sorted(REPORTS.glob("*/README.md"))]
    return [note for note in notes if not GENERATED.search("\n".join(note.read_text().splitlines()[:5]))]


def data_files(note: Path, text: str) -> list[Path]:
    """The note's folder (AREAS for the top notes) and the paths under AREAS that it names."""
    roots = list(AREAS) if note.parent in (ROOT, REPORTS) else [note.parent]
    for ref in PATH_REF.findall(text):
        path = next((p for s in (note.parent, REPORTS, ROOT) if (p := (s / ref.rstrip("/."))).exists()), ROOT)
        path, manifest = path.resolve(), path.with_suffix(".json")  # banks/X.safetensors -> banks/X.json
        root = path if path.is_dir() or path.suffix in DATA else manifest if manifest.exists() else path.parent
        root = root.parent if root.name == "README.md" else root
        if root != REPORTS and any(root == area or area in root.parents for area in AREAS):
            roots.append(root)
    files = {f for r in roots for f in (r.rglob("*") if r.is_dir() else [r]) if f.suffix in DATA}
    return sorted(f for f in files if f.name != "README.md")


def prose(text: str) -> str:
    """The text with fenced code, the generated block, code spans and link targets blanked."""
    kept, fenced, generated = [], False, False
    for line in text.splitlines():
        generated = (generated or line.startswith("<!-- findings:")) and not line.startswith("<!-- end of findings")
        fenced ^= line.startswith("```")
        kept.append("" if fenced or generated or line.startswith("```") else line)
    text = re.sub(r"`[^`]*`", lambda m: " " + "\n" * m.group(0).count("\n"), "\n".join(kept))
    return re.sub(r"\]\([^)]*\)", "]", text)


def bounds(token: str, approx: bool = False) -> tuple[float, float]:
    """The token's value and half a unit of its last digit (last non-zero one if approximate)."""
    digits = token.replace(",", "").lstrip("+-")
    exponent = -len(digits.split(".")[1]) if "." in digits else len(digits) - len(digits.rstrip("0")) if approx else 0
    return float(token.replace(",", "")), 0.5 * 10**exponent + 1e-9


def supported(token: str, approx: bool, percent: bool, data: list[float]) -> bool:
    x, h = bounds(token, approx)
    ranges = [((x - h) * scale, (x + h) * scale) for scale in ((1, 0.01) if percent else (1,))]
    return any((i := bisect.bisect_left(data, lo)) < len(data) and data[i] <= hi for lo, hi in ranges)


def interval_supported(interval: re.Match[str], files: list[Path]) -> bool:
    est, lo, hi = interval.groups()  # as written, or mirrored as the reversed comparison writes it
    wanted = [list(map(bounds, (est, lo, hi))), [(-x, h) for x, h in map(bounds, (est, hi, lo))]]
    lines = (line for f in files if f.suffix == ".md" for line in interval_lines(f))
    return any(any(all(any(abs(v - d) <= h for d in line) for v, h in w) for w in wanted) for line in lines)


@pytest.mark.parametrize("note", hand_written_notes(), ids=lambda p: str(p.relative_to(ROOT)))
def test_prose_numbers_come_from_the_data(note: Path) -> None:
    text, name = note.read_text(), str(note.relative_to(ROOT))
    files, body = data_files(note, text), prose(text)
    data = sorted([*settings(), *(n for f in files for n in file_numbers(f))])
    intervals = list(INTERVAL.finditer(body))
    unsupported = [m for m in intervals if not interval_supported(m, files)]
    for m in PROSE.finditer(body):
        approx, token, percent = m.groups()
        inside = any(i.start() <= m.start() < i.end() for i in intervals)
        if not inside and (name, token) not in ALLOWED and not supported(token, bool(approx), bool(percent), data):
            unsupported.append(m)
    unsupported.sort(key=lambda m: m.start())
    lines = [f"{name}:{body.count(chr(10), 0, m.start()) + 1}: {' '.join(m.group(0).split())}" for m in unsupported]
    assert not lines, "numbers that no data file supports:\n" + "\n".join(lines)
