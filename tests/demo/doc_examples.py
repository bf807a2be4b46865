"""The ```console examples of README.md and docs/: their commands and the output they show.

A block is a session: ``$ command`` lines, each followed by the output it prints. ``$ # …``
lines are comments. In the shown output, the only placeholder is ``…``:

* a line that is only ``…``, or starts with ``… (`` (a comment on what is left out), stands
  for any number of lines, none included;
* elsewhere, ``…`` stands for any text on that line (a path, a duration, a run id).

Trailing spaces, and blank lines before or after the output, are ignored. Everything else
must be exactly what the command prints.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ELLIPSIS = "…"


@dataclass
class Command:
    line: int  # in the markdown file, 1-based
    text: str  # without the "$ " prompt
    shown: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    commands: list[Command]

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def console_blocks(path: Path) -> list[Block]:
    blocks: list[Block] = []
    current: Block | None = None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if current is None:
            if line.strip() == "```console":
                current = Block(path, number, [])
            continue
        if line.strip() == "```":
            blocks.append(current)
            current = None
        elif line.startswith("$ "):
            if not line[2:].lstrip().startswith("#"):
                current.commands.append(Command(number, line[2:].strip()))
        elif current.commands:
            current.commands[-1].shown.append(line)
    return blocks


def _line_pattern(line: str) -> str:
    return ".*?".join(re.escape(part) for part in line.rstrip().split(ELLIPSIS))


def _any_lines(line: str) -> bool:
    text = line.strip()
    return text == ELLIPSIS or text.startswith(f"{ELLIPSIS} (")


def output_pattern(shown: list[str]) -> re.Pattern[str]:
    parts = ["(?:[^\n]*\n)*?" if _any_lines(line) else _line_pattern(line) + "\n" for line in shown]
    return re.compile("".join(parts))


def normalised(output: str) -> str:
    lines = [line.rstrip() for line in output.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    while lines and not lines[0]:  # what a finished progress bar leaves off a terminal
        lines.pop(0)
    return "".join(f"{line}\n" for line in lines)


def shows(shown: list[str], output: str) -> bool:
    while shown and not shown[-1].strip():
        shown = shown[:-1]
    return output_pattern(shown).fullmatch(normalised(output)) is not None


def first_difference(shown: list[str], output: str) -> str:
    """Where the output stops matching, for the failure message: the first shown line that
    no longer matches, in order, with the output around it."""
    actual = normalised(output).splitlines()
    position = 0
    for line in shown:
        if _any_lines(line):
            continue
        pattern = re.compile(_line_pattern(line))
        found = next(
            (i for i in range(position, len(actual)) if pattern.fullmatch(actual[i])), None
        )
        if found is None:
            around = "\n".join(actual[position : position + 8])
            return f"shown line not printed: {line!r}\nprinted from there:\n{around}"
        position = found + 1
    return "every shown line is printed, but the output has lines the docs do not show"
