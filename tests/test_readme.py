"""README.md agrees with the code: every `hpo` command and option it names exists, and every
link to one of its own headings (the table of contents first) lands on one.

The commands come from the CLI chapter's tables (a row whose first cell is `hpo ...`; a row
whose first cell is an option applies to every command of its table's section) and from
every shell block that runs `hpo`. Each command must answer `hpo <command> --help`, and
each option must be one that help lists.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from api.cli import app

README = Path(__file__).resolve().parent.parent / "README.md"
TEXT = README.read_text()
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
WORD = re.compile(r"^[a-z][a-z0-9-]*$")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Mention:
    """A command line as the README writes it: `hpo datasets delete ID --json`."""

    words: tuple[str, ...]  # the lowercase words after `hpo`: the command and its arguments
    options: tuple[str, ...]
    where: str  # which table or shell block
    shown: str  # the command as written there

    def __str__(self) -> str:
        return f"{self.where}: {self.shown}"


def outside_code(text: str) -> str:
    return FENCE.sub("", text)


def slug(title: str) -> str:
    """GitHub's anchor for a heading: its rendered text lowercased, punctuation dropped,
    each space a hyphen."""
    rendered = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", title).replace("`", "")
    return re.sub(r"[^\w\- ]", "", rendered.strip().lower()).replace(" ", "-")


def headings(text: str) -> list[tuple[int, str]]:
    return [
        (len(m.group(1)), m.group(2).strip())
        for m in re.finditer(r"^(#{1,6}) (.+)$", outside_code(text), re.MULTILINE)
    ]


def anchors(text: str) -> set[str]:
    """Every heading's anchor; a repeated one gets -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    for _, title in headings(text):
        base = slug(title)
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def chapter(text: str, title: str, level: int = 2) -> str:
    """The text under a heading, up to the next heading of its level or above."""
    marks = "#" * level
    pattern = rf"^{marks} {re.escape(title)}\n(.*?)(?=^#{{1,{level}}} |\Z)"
    match = re.search(pattern, text, re.MULTILINE | re.DOTALL)
    assert match, f"README has no '{marks} {title}' heading"
    return match.group(1)


def table_rows(text: str) -> list[list[str]]:
    """The cells of each body row of the markdown tables in `text` (not headers)."""
    rows = []
    for block in re.findall(r"(?:^\|.*\|\n)+", outside_code(text), re.MULTILINE):
        lines = block.splitlines()
        for line in lines[2:]:  # header and |---| first
            cells = re.split(r"(?<!\\)\|", line.strip().strip("|"))
            rows.append([c.strip() for c in cells])
    return rows


def table_mentions(text: str) -> list[Mention]:
    """The CLI chapter's rows, each section's common options added to its commands."""
    found = []
    cli = chapter(text, "CLI")
    for section in re.split(r"^### ", cli, flags=re.MULTILINE):
        name = section.split("\n", 1)[0].strip() or "CLI"
        rows = table_rows(section)
        common = [o for row in rows if row[0].startswith("`--") for o in OPTION.findall(row[0])]
        for row in rows:
            if row[0].startswith("`hpo "):
                line = row[0].strip("`")
                found.append(
                    Mention(
                        words=command_words(shlex.split(line)[1:]),
                        options=(*OPTION.findall(" ".join(row)), *common),
                        where=f"CLI table '{name}'",
                        shown=line,
                    )
                )
    return found


def command_words(tokens: list[str]) -> tuple[str, ...]:
    words = []
    for token in tokens:
        if not WORD.match(token):
            break
        words.append(token)
    return tuple(words)


def shell_mentions(text: str) -> list[Mention]:
    """Every line of a bash block that runs `hpo` (after any VAR=value assignments)."""
    found = []
    for lang, body in FENCE.findall(text):
        if lang not in ("bash", "sh", "shell"):
            continue
        for line in body.replace("\\\n", " ").splitlines():
            tokens = shlex.split(line, comments=True)
            shown = " ".join(tokens)
            while tokens and re.match(r"^[A-Z_][A-Z0-9_]*=", tokens[0]):
                tokens.pop(0)
            if not tokens or tokens[0] not in ("hpo", ".venv/bin/hpo"):
                continue
            args = [t for t in tokens[1:] if t not in (">", "|") and not t.startswith(">")]
            options = tuple(t.split("=", 1)[0] for t in args if t.startswith("--"))
            found.append(Mention(command_words(args), options, "shell block", shown))
    return found


MENTIONS = table_mentions(TEXT) + shell_mentions(TEXT)
RUNNER = CliRunner()


def resolve(words: tuple[str, ...]) -> tuple[tuple[str, ...], Any]:
    """The command that `hpo WORDS...` runs, and the words that name it (the rest are
    arguments); AssertionError names the first word `hpo` has no command for. (Typer
    vendors its own click: a group is whatever has `commands`.)"""
    command: Any = typer.main.get_command(app)
    path: list[str] = []
    for word in words:
        commands = getattr(command, "commands", None)
        if commands is None:
            break
        said = " ".join(["hpo", *path])
        assert word in commands, (
            f"`{said} --help` has no command '{word}' (it has {sorted(commands)})"
        )
        command = commands[word]
        path.append(word)
    assert not hasattr(command, "commands"), f"`hpo {' '.join(path)}` needs a subcommand"
    return tuple(path), command


def test_the_readme_names_cli_commands() -> None:
    assert len(table_mentions(TEXT)) >= 10, "the CLI chapter's tables were not found"
    assert shell_mentions(TEXT), "no shell block runs hpo"


@pytest.mark.parametrize("mention", MENTIONS, ids=str)
def test_every_command_and_option_the_readme_names_exists(mention: Mention) -> None:
    path, command = resolve(mention.words)
    result = RUNNER.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, f"`hpo {' '.join(path)} --help` failed: {result.output}"
    listed = {
        name
        for param in command.params
        if not getattr(param, "hidden", False)
        for name in (*param.opts, *param.secondary_opts)
        if name.startswith("--")
    } | {"--help"}
    missing = sorted(set(mention.options) - listed)
    assert not missing, (
        f"{mention.where} names {missing}, which `hpo {' '.join(path)} --help` does not list "
        f"(it lists {sorted(listed)})"
    )


def test_the_contents_link_every_chapter_and_section() -> None:
    contents = chapter(TEXT, "Contents")
    linked = re.findall(r"\]\(#([^)]+)\)", contents)
    wanted = [slug(t) for level, t in headings(TEXT) if level in (2, 3) and t != "Contents"]
    missing = [a for a in wanted if a not in linked]
    assert not missing, f"the contents do not link these headings: {missing}"
    assert linked == wanted, f"the contents list the headings out of order or twice: {linked}"


def test_every_link_to_a_heading_lands_on_one() -> None:
    known = anchors(TEXT)
    links = re.findall(r"\]\(#([^)]+)\)", outside_code(TEXT))
    assert links, "the README links none of its headings"
    broken = sorted({a for a in links if a not in known})
    assert not broken, f"these links name no heading: {broken}"


def test_the_two_commands_come_first() -> None:
    """A contract with CI and newcomers: the first block is `make demo` and `make test`."""
    lang, body = FENCE.findall(TEXT)[0]
    assert lang == "bash"
    assert [line.split("#")[0].strip() for line in body.splitlines()] == ["make demo", "make test"]


ROOT = README.parent
SOURCE_ROOTS = ("api", "service", "search", "workers", "storage", "bench", "tests", "scripts")


@pytest.mark.parametrize("doc", ["README.md", "bench/README.md"])
def test_every_source_file_a_readme_names_exists(doc: str) -> None:
    """A path such as `service/cluster/scheduler.py` is where it says; a bare name such as
    `ledger.py` is somewhere in the tree. Moving code moves its mentions too."""
    text = (ROOT / doc).read_text()
    named = set(re.findall(r"`([A-Za-z0-9_./-]+\.py)", text))
    every = {p.relative_to(ROOT).as_posix() for r in SOURCE_ROOTS for p in (ROOT / r).rglob("*.py")}
    names = {Path(p).name for p in every}
    missing = sorted(
        n
        for n in named
        if n not in every and f"bench/{n}" not in every and ("/" in n or n not in names)
    )
    assert named and missing == [], missing
