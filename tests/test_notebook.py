"""harness.commands.notebook: a kata checked from a notebook cell, through the same runner as everything else."""
import importlib.util
import textwrap

import pytest

from harness import manifest
from harness.commands.notebook import check

pytestmark = pytest.mark.subprocess  # starts processes of its own: not in make quick

KATA = manifest.get("mlp.gelu_new")
BODY = textwrap.dedent(KATA.reference_file.read_text().split("def gelu_new", 1)[1])


def test_a_right_answer_defined_elsewhere_is_done(tmp_path):
    cell = tmp_path / "cell.py"  # as IPython keeps a cell: its own source, the notebook's names
    cell.write_text("import math\nimport torch\nfrom jaxtyping import Float\nfrom torch import Tensor\n\n\ndef my_gelu" + BODY)
    spec = importlib.util.spec_from_file_location("cell", cell)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert check("gelu_new", module.my_gelu).status == "done"


def test_a_wrong_answer_as_text_fails_with_its_first_failure(capsys):
    result = check(9, source="def gelu_new(x):\n    return torch.relu(x)\n")
    assert result.status == "failing" and "failed" in capsys.readouterr().out


def test_without_a_solution_it_says_what_to_give():
    with pytest.raises(ValueError, match="source="):
        check("gelu_new")
