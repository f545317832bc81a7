"""The harness itself: isolation of katas, the flags, the loader and parts."""
import os
import subprocess
import sys

import pytest

from harness import loader, manifest, parts
from harness.run.runner import run_katas

pytestmark = pytest.mark.subprocess  # starts processes of its own: not in make quick

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
    for kata_id, (_kind, source) in BROKEN.items():
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


# Realistic crashes inside the learner's own code: (kata, what replaces `raise NotImplementedError`,
# the line the message must point at, a piece of the hint that fits that crash).
CRASHES = {
    "attention.attention_scores": ("import torch\nreturn torch.matmul(q, k) / q.shape[-1] ** 0.5",
                                   "torch.matmul(q, k)", "print the shapes"),
    "attention.causal_mask": ("mask = torch.triu(torch.ones(scores.shape[-2], scores.shape[-1]), diagonal=1)\n"
                              "return scores.masked_fill(mask, torch.finfo(scores.dtype).min)",
                              "scores.masked_fill(mask", "must be boolean"),
    "mlp.mlp": ("hidden = parts.gelu_new(normalized_resid_mid @ self.W_in.T + self.b_in)\n"
                "return hidden @ self.W_out.T + self.b_out", "self.W_in.T", "print the shapes"),
}


def _stub_with(kata_id: str, body: str, folder) -> str:
    """The kata's stub with `raise NotImplementedError` (the last one) replaced by `body`."""
    stub = manifest.get(kata_id).file.read_text()
    at = stub.rindex("raise NotImplementedError")
    indent = stub[stub.rindex("\n", 0, at) + 1:at]
    path = folder / f"{kata_id}.py"
    path.write_text(stub[:at] + ("\n" + indent).join(body.splitlines()) + stub[at + len("raise NotImplementedError"):])
    return f"--swap={kata_id}={path}"


@pytest.mark.slow
@pytest.mark.parametrize("isolate", [False, True], ids=["in-process", "isolated"])
def test_a_crash_in_the_learners_code_is_a_short_message_with_their_line_and_a_fitting_hint(isolate, tmp_path):
    swaps = [_stub_with(kata_id, body, tmp_path) for kata_id, (body, _, _) in CRASHES.items()]
    katas = [manifest.get(kata_id) for kata_id in CRASHES]
    results = run_katas(katas, "--reference", *swaps, isolate=isolate)
    for kata_id, (_, line, hint) in CRASHES.items():
        failed = [test for test in results[kata_id].tests if test.outcome == "failed"]
        assert failed, (kata_id, results[kata_id])
        message = failed[0].output or failed[0].message
        assert message.removeprefix("Failed: ").startswith("your code raised RuntimeError: "), message
        assert f"{kata_id.split('.')[1]}.py, line" in message and line in message, message
        assert hint in message and f"Stuck? kata hint {kata_id}" in message, message
        assert "torch/" not in message and "_call_impl" not in message and "hypothesis/" not in message, message
        assert len(message.strip().splitlines()) <= 8, message


@pytest.mark.slow
def test_pytest_timeout_ends_an_infinite_loop_in_a_hypothesis_test_and_says_where(tmp_path):
    """`pytest --timeout N` (pytest-timeout's signal method) on a loop inside a Hypothesis test: the
    alarm repeats, so Hypothesis's replay cannot swallow it; the kata's other tests fail at once."""
    loop = tmp_path / "attention_scores.py"
    loop.write_text("def attention_scores(q, k):\n    while True:\n        pass\n")
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "katas/attention/test_attention_scores.py",
               f"--swap=attention.attention_scores={loop}", "--timeout", "5"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    session = float(done.stdout.strip().splitlines()[-1].rsplit(" in ", 1)[1].split("s")[0])
    assert session < 5 + 15, f"the session took {session} s with --timeout 5:\n{done.stdout[-2000:]}"
    assert f"It was running {loop}, line 2, in attention_scores: while True:" in done.stdout, done.stdout[-2000:]
    assert "earlier test of this kata ran out of time" in done.stdout
