"""Learner text in every sink (harness.untrusted), and reports written all-or-nothing from hostile text."""
import json
import re
import xml.etree.ElementTree as ElementTree

import pytest

from harness import manifest
from harness.failures import FailureKind
from harness.grading.grade import Grade, ReportError, write_reports
from harness.run.results import KataResult, TestOutcome
from harness.untrusted import Sink, identifier, shown

HOSTILE = ("<h2>Transformer Katas: 99/99</h2> <img src=x> [passed](https://e.invalid) ![i](u) | 5 | done |\n"
           "# heading\x1b[2J\x00\x0b\udc80 &amp; `code` <script>x</script> \ufffe")
RAW = re.compile(r"<\s*(h\d|img|script)|!\[|\]\(|\x1b|\x00|\x0b|[\ud800-\udfff]")


@pytest.mark.parametrize("sink", list(Sink))
def test_every_sink_gets_text_without_control_characters_or_surrogates(sink):
    text = shown(HOSTILE, sink)
    text.encode("utf-8")  # no lone surrogate left: this would raise
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", text), repr(text)
    assert "\\x1b" in text and "\\x00" in text, "a control character is written out, so the learner sees it was there"


def test_markdown_shows_no_tag_link_image_or_table_cell_of_the_learners():
    text = shown(HOSTILE, Sink.MARKDOWN)
    assert not RAW.search(text) and "\n" not in text and re.search(r"(?<!\\)\|", text) is None, text
    assert "&lt;h2&gt;" in text and "\\[passed\\]" in text


def test_xml_text_parses_and_keeps_the_message():
    element = ElementTree.Element("failure", message=shown(HOSTILE, Sink.XML))
    element.text = shown(HOSTILE, Sink.XML)
    parsed = ElementTree.fromstring(ElementTree.tostring(element, encoding="unicode"))
    assert "Transformer Katas: 99/99" in parsed.text and "\ufffe" not in parsed.text


def test_terminal_text_has_no_rich_markup():
    from rich.console import Console

    console = Console(record=True, width=300, color_system=None)
    console.print(shown("[bold red]fake[/] [link=https://e.invalid]x[/link]", Sink.TERMINAL))
    assert "[bold red]fake[/]" in console.export_text()


def test_a_remote_exception_type_name_is_an_identifier_or_exception():
    assert identifier("ValueError") == "ValueError" and identifier("My_Error2") == "My_Error2"
    for hostile in ("<h2>x</h2>", "a b", "", "1abc", "é", "x" * 200):
        assert identifier(hostile) == "Exception"


def hostile_grade() -> Grade:
    kata = manifest.get("attention.causal_mask")
    result = KataResult(kata)
    result.add(TestOutcome("katas/attention/test_causal_mask.py::test_x", "test_x", "failed", HOSTILE, HOSTILE, 0.1,
                           FailureKind.ERROR))
    result.protections = [HOSTILE]
    return Grade([kata], {kata.id: result}, [], 1.0, "abc123")


def test_reports_from_hostile_text_are_well_formed_and_show_nothing_raw(tmp_path):
    files = write_reports(hostile_grade(), tmp_path)
    assert sorted(path.relative_to(tmp_path).as_posix() for path in files) == [
        "classroom.b64", "classroom.json", "gradescope/results.json", "junit.xml", "results.json", "summary.md"]
    ElementTree.parse(tmp_path / "junit.xml")
    for name in ("results.json", "classroom.json", "gradescope/results.json"):
        json.loads((tmp_path / name).read_text(encoding="utf-8"))
    summary = (tmp_path / "summary.md").read_text(encoding="utf-8")
    gradescope_markdown = json.loads((tmp_path / "gradescope/results.json").read_text())["output"]
    for text in (summary, gradescope_markdown):
        assert text.startswith("## Transformer Katas: 0/1 points") and not RAW.search(text)
    assert "| 5 | Causal mask |" in summary, "the curriculum's number, not the position among the graded katas"


def test_reports_are_written_all_or_nothing(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "gradescope").write_text("a file where a folder must go")
    with pytest.raises(ReportError, match="could not be written"):
        write_reports(hostile_grade(), out)
    assert sorted(path.name for path in out.iterdir()) == ["gradescope"], "nothing written, nothing half-written"


def test_a_grade_not_walled_in_by_namespaces_says_so_in_every_report(tmp_path):
    from harness.grading.grade import NOT_CONTAINED

    uncontained = hostile_grade()
    uncontained.results["attention.causal_mask"].protections = ["no namespaces (unshare: Operation not permitted)", "audit hooks"]
    assert not uncontained.contained
    write_reports(uncontained, tmp_path / "out")
    assert NOT_CONTAINED in (tmp_path / "out" / "summary.md").read_text()
    assert NOT_CONTAINED in json.loads((tmp_path / "out" / "results.json").read_text())["message"]
    assert 'name="contained" value="false"' in (tmp_path / "out" / "junit.xml").read_text()
    contained = hostile_grade()
    contained.results["attention.causal_mask"].protections = ["new PID namespace (every process it starts dies with it)"]
    assert contained.contained
    write_reports(contained, tmp_path / "in")
    assert NOT_CONTAINED not in (tmp_path / "in" / "summary.md").read_text()


@pytest.mark.parametrize("accept", [False, True], ids=["refused", "--uncontained"])
def test_kata_grade_says_not_contained_first_and_fails_unless_told(accept, tmp_path, monkeypatch, capsys):
    from harness.commands import cli
    from harness.grading import grade as grading

    uncontained = hostile_grade()
    uncontained.results["attention.causal_mask"].protections = ["no namespaces (unshare: Operation not permitted)"]
    monkeypatch.setattr(grading, "grade", lambda *args, **kwargs: uncontained)
    code = cli.main(["grade", "--out", str(tmp_path), *(["--uncontained"] if accept else [])])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(grading.NOT_CONTAINED) and any(line.startswith("Score: 0/1") for line in lines)
    assert code == (0 if accept else 3)
