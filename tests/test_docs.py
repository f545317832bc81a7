"""The documentation: README.md's table of katas is the manifest's, README.md stays short enough
to read, and every relative link in the docs leads to a file that exists (and to its heading).

    python tests/test_docs.py    rewrite README.md's table of katas from manifest.toml

Fast: it reads files and nothing else (no subprocess, no torch).
"""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = [README, ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 200
TABLE_START, TABLE_END = "<!-- kata-table:start -->", "<!-- kata-table:end -->"
TABLE = re.compile(re.escape(TABLE_START) + r"\n(.*?)" + re.escape(TABLE_END), re.DOTALL)
FENCE = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)
LINK = re.compile(r"\]\(([^)\s]+)\)")  # [text](target): the target
# A count of attack files, as a sentence would put it: "22 attack files", "22 hostile kata files", "22 attacks".
ATTACK_COUNT = re.compile(r"\b(\d+)\s+(?:hostile\s+)?(?:kata\s+files\s+that\s+try|kata\s+files\s+that\s+attack|attack\s+files|attacks)\b")


def kata_table() -> str:
    """README.md's table of katas, made from the manifest: number, title, file and points, in learning order."""
    from harness import manifest

    rows = [f"| {number} | {kata.title} | `{kata.relative(kata.file)}` | {kata.points} |"
            for number, kata in enumerate(manifest.katas(), start=1)]
    return "\n".join(["| # | kata | file | points |", "|---|---|---|---|", *rows]) + "\n"


def readme_table(text: str) -> "str | None":
    """The table between the markers in `text`, or None when the markers are missing."""
    found = TABLE.search(text)
    return found.group(1) if found else None


def write_kata_table(readme: Path = README) -> bool:
    """Put the manifest's table between the markers; True when README.md changed."""
    text = readme.read_text(encoding="utf-8")
    if readme_table(text) is None:
        raise SystemExit(f"{readme}: no {TABLE_START} ... {TABLE_END} markers to put the table between")
    new = TABLE.sub(lambda _: f"{TABLE_START}\n{kata_table()}{TABLE_END}", text, count=1)
    if new != text:
        readme.write_text(new, encoding="utf-8")
    return new != text


def relative_links(path: Path) -> list[str]:
    """The targets of the Markdown links in `path` that are in this checkout (no URL), anchors kept: "docs/a.md#b", "#c"."""
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    return [target for target in LINK.findall(text) if not re.match(r"[a-z][a-z0-9+.-]*:", target)]


def anchors(path: Path) -> set[str]:
    """The anchors GitHub makes for a Markdown file's headings: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#{1,6}\s+(.+?)\s*$", FENCE.sub("", path.read_text(encoding="utf-8")), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def broken_link(path: Path, target: str) -> "str | None":
    """Why `target`, a relative link in `path`, leads nowhere; None when it leads to a file (and heading)."""
    file, _, anchor = target.partition("#")
    destination = (path.parent / file).resolve() if file else path
    if not destination.exists():
        return "no such file"
    if anchor and destination.suffix == ".md" and anchor not in anchors(destination):
        return f"no heading #{anchor} in {destination.relative_to(ROOT).as_posix()}"
    return None


def test_the_readmes_table_of_katas_is_the_manifest():
    table = readme_table(README.read_text(encoding="utf-8"))
    assert table is not None, f"README.md has no {TABLE_START} ... {TABLE_END} markers around its table of katas"
    assert table == kata_table(), "README.md's table of katas differs from manifest.toml: run `python tests/test_docs.py` to rewrite it"


def test_the_readme_is_short():
    lines = len(README.read_text(encoding="utf-8").splitlines())
    assert lines <= README_MAX_LINES, (f"README.md has {lines} lines, more than {README_MAX_LINES}: it is the learner's page; "
                                       "move what is not for learners to docs/ (see docs/internals.md) and link to it")


def test_the_docs_are_there():
    missing = [path.relative_to(ROOT).as_posix() for path in DOCS if not path.is_file()]
    assert not missing, f"missing: {missing}"
    assert {path.name for path in DOCS} >= {"README.md", "CONTRIBUTING.md", "instructors.md", "oracles.md", "internals.md"}


def test_every_relative_link_leads_to_a_file_and_heading():
    broken = [f"{path.relative_to(ROOT).as_posix()}: ({target}): {why}" for path in DOCS for target in relative_links(path)
              if (why := broken_link(path, target))]
    assert not broken, "links to nothing:\n" + "\n".join(broken)


def test_a_count_of_attack_files_in_the_docs_is_true():
    attacks = len(list((ROOT / "tests" / "attacks").glob("attack_*.py")))
    wrong = [f"{path.relative_to(ROOT).as_posix()}: {found.group(0)!r}" for path in DOCS
             for found in ATTACK_COUNT.finditer(path.read_text(encoding="utf-8")) if int(found.group(1)) != attacks]
    assert not wrong, f"tests/attacks/ holds {attacks} attack files, but the docs say:\n" + "\n".join(wrong)


def test_the_link_and_count_checks_see_what_they_look_for():
    """The checks above pass on no match: make sure they would match."""
    assert LINK.findall("see [the oracles](docs/oracles.md#ties) and [a site](https://example.com)") == \
        ["docs/oracles.md#ties", "https://example.com"]
    assert broken_link(README, "#no-such-heading") and broken_link(README, "docs/no-such-file.md")
    assert broken_link(README, "#quick-start") is None
    assert [m.group(1) for m in ATTACK_COUNT.finditer("it grades 23 kata files that try to forge; 7 attack files")] == ["23", "7"]


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))  # the harness of this checkout
    print("README.md: table of katas rewritten" if write_kata_table() else "README.md: table of katas already up to date")
