"""The harness itself: isolation of katas, the flags, the loader and parts."""
import os
import subprocess
import sys

import pytest

from harness import loader, manifest, parts
from harness.runner import run_katas

ROOT = manifest.ROOT

BROKEN = {
    "attention.attention_scores": ("syntax", "def attention_scores(q, k)\n    return q\n"),
    "attention.causal_mask": ("import", "import a_module_that_does_not_exist\n"),
    "attention.attention_pattern": ("no symbol", "def softmax(x):\n    return x\n"),
}


def run_suites(folders, *args, isolate=False):
    """The suites of every kata in `folders`, through the one runner; and all their failure texts."""
    katas = [kata for kata in manifest.katas() if kata.folder in folders]
    results = run_katas(katas, *args, isolate=isolate)
    text = "\n".join(test.message + "\n" + test.output for result in results.values() for test in result.tests)
    return results, text


@pytest.mark.slow
@pytest.mark.parametrize("isolate", [False, True], ids=["in-process", "isolated"])
def test_a_broken_kata_file_fails_only_that_kata_and_names_the_file(isolate, tmp_path):
    swaps = []
    for kata_id, (kind, source) in BROKEN.items():
        path = tmp_path / f"{kata_id}.py"
        path.write_text(source)
        swaps.append(f"--swap={kata_id}={path}")
    results, text = run_suites({"attention", "block"}, "--reference", *swaps, isolate=isolate)
    for kata_id in BROKEN:
        result = results[kata_id]
        assert result.status == "broken" and result.passed == 0, (kata_id, result)
        assert all(f"{kata_id.split('.')[1]}.py" in failure for failure in result.failures), result.failures[0]
    for kata_id in ("attention.attend_to_values", "attention.multi_head_attention", "block.transformer_block"):
        assert results[kata_id].status == "done", (kata_id, results[kata_id].failures[:1])
    assert "SyntaxError" in text and "ModuleNotFoundError" in text and "does not define" in text


@pytest.mark.slow
@pytest.mark.parametrize("how", [["--reference"], []])
def test_reference_flag_and_env_var_are_the_same(how):
    """KATA_IMPL is for a plain pytest run (the runner never passes it on): checked with pytest itself."""
    env = {**os.environ, "CI": "1", **({} if how else {"KATA_IMPL": "reference"})}
    done = subprocess.run([sys.executable, "-m", "pytest", "katas/mlp/test_gelu_new.py", "-q", "-p", "no:cacheprovider", *how],
                          cwd=ROOT, capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0 and " passed" in done.stdout, done.stdout[-2000:]


@pytest.mark.parametrize(
    "how, says",
    [(["--reference"], "kata under test: reference solutions"), ([], "kata under test: your katas (katas/)")],
)
def test_the_header_says_which_implementation_is_under_test(how, says):
    env = {key: value for key, value in os.environ.items() if key != "KATA_IMPL"}
    header = subprocess.run([sys.executable, "-m", "pytest", "--co", "katas/mlp/test_gelu_new.py", *how],
                            cwd=ROOT, capture_output=True, text=True, env=env).stdout
    assert says in header, header[:1000]


def test_parts_are_the_reference_unless_asked_otherwise(monkeypatch):
    asked = []
    monkeypatch.setattr(loader, "load", lambda path, symbol: asked.append(path))
    monkeypatch.setattr(loader, "_parts", {})
    kata = manifest.get("mlp.gelu_new")
    parts.gelu_new
    loader.use_learner_parts({kata.id})
    try:
        parts.gelu_new
    finally:
        loader.use_learner_parts(set())
    assert asked == [kata.reference_file, kata.file]


def test_unknown_part_is_a_clear_error():
    with pytest.raises(AttributeError, match="no kata provides"):
        parts.no_such_part


def test_loaded_code_is_shape_checked():
    import torch
    from jaxtyping import TypeCheckError

    scores = loader.load_reference(manifest.get("attention.attention_scores"))
    with pytest.raises(TypeCheckError):
        scores(torch.zeros(1, 2, 3, 4), torch.zeros(1, 2, 3, 5))  # d_head differs between q and k


@pytest.mark.slow
@pytest.mark.parametrize("isolate", [False, True], ids=["in-process", "isolated"])
def test_a_shape_error_names_the_learners_line_and_the_hint(isolate, tmp_path):
    wrong = tmp_path / "attend_to_values.py"
    wrong.write_text(
        manifest.get("attention.attend_to_values").reference_file.read_text().replace(
            "-> batch query_pos n_heads d_head\"", "-> batch n_heads query_pos d_head\""
        )
    )
    results, text = run_suites({"attention"}, "--reference", f"--swap=attention.attend_to_values={wrong}", isolate=isolate)
    result = results["attention.attend_to_values"]
    assert result.status == "failing" and {test.kind for test in result.tests if test.outcome == "failed"} == {"type_check"}
    assert "does not match a signature's annotations" in text
    assert "Stuck? kata hint attention.attend_to_values" in text
