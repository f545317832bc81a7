"""The generation benchmark runs end to end (on tiny sizes) and writes the figures it promises."""
import json

import pytest

from benchmarks import generation

pytestmark = pytest.mark.subprocess  # starts processes of its own: not in make quick


def test_the_quick_benchmark_writes_its_table_and_json(tmp_path, capsys):
    path = tmp_path / "figures.json"
    assert generation.main(["--quick", "--model", "tiny", "--threads", "1", "--json", str(path)]) == 0
    figures = json.loads(path.read_text())
    contenders = {"reference, cache", "reference, no cache", "Hugging Face, cache"}
    assert {(r["batch"], r["new_tokens"]) for r in figures["results"]} == set(generation.QUICK)
    assert {r["contender"] for r in figures["results"]} == contenders
    assert all(r["tokens_per_s"] > 0 for r in figures["results"])
    assert len(figures["ratios"]) == len(generation.QUICK)
    assert all(0 < r["roofline_share"] for r in figures["results"] if r["contender"] == "reference, cache")
    assert figures["machine"]["threads"] == 1 and figures["machine"]["read_bandwidth_GB_per_s"] > 0
    output = capsys.readouterr().out
    assert "cache speedup" in output and "WARNING" not in output, "the table is printed and every contender made the same tokens"


def test_the_feedback_benchmark_gives_ratios_to_the_torch_import(tmp_path, capsys):
    from benchmarks import feedback

    path = tmp_path / "feedback.json"
    assert feedback.main(["--quick", "--only", "pytest", "--repeats", "1", "--json", str(path)]) == 0
    figures = json.loads(path.read_text())
    rows = {row["name"]: row for row in figures["figures"]}
    assert figures["unit_seconds"] > 0 and rows["unit: python -c 'import torch'"]["ratio"] == 1.0
    assert rows["pytest, cold"]["ratio"] > 0 and rows["pytest, cold"]["goal"] == 2.0
    assert "x torch import" in capsys.readouterr().out
