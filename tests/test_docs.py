"""README and docs/: every relative link resolves, the README stays a short front door, and
every example that shows output is labelled (date, machine, command) or checked by a test."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower-cased, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    lines = page.read_text(encoding="utf-8").splitlines()
    return {slug(line.lstrip("#")) for line in lines if re.match(r"^#{1,6} ", line)}


def links(page: Path):
    text = page.read_text(encoding="utf-8")
    text = re.sub(r"```.*?```", "", text, flags=re.S)  # code blocks hold no links
    return LINK.findall(text)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_resolve(page):
    broken = []
    for target in links(page):
        if re.match(r"^[a-z]+:", target):
            continue  # http(s), mailto: not checked offline
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target} (no such heading)")
    assert broken == [], f"{page.name}: broken links: {broken}"


def test_readme_is_a_short_front_door():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 300
    for marker in ("<!-- main-job -->", "<!-- test-command -->"):
        assert marker in readme
    # Every docs page is reachable from the README.
    linked = {Path(target.partition("#")[0]).name for target in links(ROOT / "README.md")}
    assert {page.name for page in PAGES[1:]} <= linked


def test_slugs_follow_githubs_rule():
    assert slug("Train faster, or on several devices (all off by default)") == (
        "train-faster-or-on-several-devices-all-off-by-default"
    )
    assert slug("`--keep best`: kept weights") == "--keep-best-kept-weights"


def output_blocks(page: Path):
    """(line number, marker line before it, block text) of every ```text / ```console block."""
    lines = page.read_text(encoding="utf-8").split("\n")
    inside, blocks = False, []
    for i, line in enumerate(lines):
        if line.startswith("```"):
            if not inside and line.strip() in ("```text", "```console"):
                end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
                blocks.append((i + 1, lines[i - 1] if i else "", "\n".join(lines[i + 1 : end])))
            inside = not inside
    return blocks


def cli_flags() -> set[str]:
    """Every option string of every `tftransformer` command and subcommand."""
    import argparse

    from tftransformer.cli.main import build_parser

    flags, parsers = set(), [build_parser()]
    while parsers:
        parser = parsers.pop()
        for action in parser._actions:  # argparse has no public walk over its options
            flags.update(s for s in action.option_strings if s.startswith("--"))
            if isinstance(action, argparse._SubParsersAction):
                parsers.extend(action.choices.values())
    return flags


MARKER = re.compile(
    r"^<!-- example: (synopsis|not output \(.+\)|produced: (.+)|checked: (\S+)) -->$"
)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_example_output_is_labelled_or_checked(page):
    """Each text/console block says what it is, on the line before it: a synopsis (its flags
    must exist), not output, output produced on a date (with the machine and command), or
    output a named test checks."""
    flags = None
    for line, marker, block in output_blocks(page):
        found = MARKER.match(marker)
        assert found, f"{page.name}:{line}: no <!-- example: ... --> line before this block"
        kind, produced, checked = found.groups()
        if kind == "synopsis":
            flags = flags or cli_flags()
            unknown = set(re.findall(r"--[a-z][a-z0-9-]*", block)) - flags
            assert not unknown, f"{page.name}:{line}: flags the CLI does not have: {unknown}"
        elif produced is not None:
            assert re.search(r"\b20\d\d-\d\d-\d\d\b", produced) and produced.count(",") >= 2, (
                f"{page.name}:{line}: 'produced:' needs a date, the machine and the command"
            )
        elif checked is not None:
            path, _, name = checked.partition("::")
            source = (ROOT / path).read_text(encoding="utf-8")
            assert f"def {name}(" in source, f"{page.name}:{line}: {checked} does not exist"
