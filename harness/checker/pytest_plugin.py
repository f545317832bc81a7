"""The kata harness as a pytest plugin, loaded by the root conftest.py.

Flags: --reference (or KATA_IMPL=reference) tests the reference solutions instead of katas/;
--swap KATA=FILE tests FILE in place of one kata (the mutants run this way); --device cuda
runs the suites on a GPU; --isolate runs the code under test in a worker process of its own
(harness.checker.isolation; `kata grade` always does).
"""
import os
import traceback
from pathlib import Path

# Never touch the network at test time: the Hugging Face oracles are built from configs.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
# Hypothesis's own plugins (entry points) are not used by any suite: trio's alone imported trio and
# pytest's internals again, about 0.2 s of every run's start-up.
os.environ.setdefault("HYPOTHESIS_NO_PLUGINS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import HealthCheck, Phase, settings  # noqa: E402
from jaxtyping import TypeCheckError  # noqa: E402

from harness import loader, manifest  # noqa: E402
from harness.checker import isolation
from harness.checker.settings import CheckerSettings  # noqa: E402
from harness.failures import FAILURE_KIND, RECOGNISED, FailureKind, take_recognised, take_shape_failure  # noqa: E402
from harness.loader import KataImportError  # noqa: E402
from harness.sandbox.wire import RemoteError  # noqa: E402

try:
    ExceptionGroup  # noqa: B018 - a builtin from Python 3.11
except NameError:  # Python 3.10: Hypothesis's own dependency provides it
    from exceptiongroup import ExceptionGroup

# Derandomized everywhere: a learner's run, and CI's, give the same verdict every time.
# No "explain" phase: it costs seconds per failing test, and a learner fails tests often.
_deterministic = dict(
    deadline=None, derandomize=True, database=None, max_examples=25, print_blob=False, report_multiple_bugs=False,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.differing_executors],
)
settings.register_profile("dev", **_deterministic)
settings.register_profile("ci", **_deterministic)
# For instructors hunting for new counterexamples: random, and many more examples.
settings.register_profile("thorough", deadline=None, database=None, max_examples=500)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("katas")
    group.addoption("--reference", action="store_true", help="test the reference solutions (or KATA_IMPL=reference)")
    group.addoption("--swap", action="append", default=[], metavar="KATA=FILE", help="test FILE in place of KATA")
    group.addoption("--device", default="cpu", choices=["cpu", "cuda"], help="where the suites run (default cpu)")
    group.addoption("--isolate", action="store_true",
                    help="run the code under test in a worker process of its own, as `kata grade` does")


def pytest_configure(config: pytest.Config) -> None:
    reference = config.getoption("--reference") or os.environ.get("KATA_IMPL", "katas") == "reference"
    swaps = {}
    for swap in config.getoption("--swap"):
        kata_id, sep, path = swap.partition("=")
        if not sep:
            raise pytest.UsageError(f"--swap takes KATA=FILE, got {swap!r}")
        swaps[kata_id] = path
    if config.getoption("--device") == "cuda" and not torch.cuda.is_available():
        why = "this torch is a CPU build" if torch.version.cuda is None else "torch finds no CUDA GPU on this machine"
        raise pytest.UsageError(f"--device cuda: {why}. Run without --device (the CPU) instead.")
    loader.configure(reference=reference, swaps=swaps)
    run = CheckerSettings.from_env()
    if run.threads:
        torch.set_num_threads(run.threads)  # an isolated worker takes the checker's number (harness.sandbox.wire.peer)
    config.args[:] = [_suite_of(arg, config) for arg in config.args]
    if config.getoption("--isolate"):
        memory_gib = run.worker_memory_gib if run.worker_memory_gib is not None else isolation.Settings().memory_gib
        cpu = int(run.worker_cpu_seconds) if run.worker_cpu_seconds else 600
        isolation.enable(isolation.Settings(hide=list(run.hide), memory_gib=memory_gib or None, cpu_seconds=cpu))
    profile = config.getoption("--hypothesis-profile", None)
    if not profile:
        settings.load_profile("ci" if os.environ.get("CI") else "dev")


def _suite_of(arg: str, config: pytest.Config) -> str:
    """`pytest katas/attention/causal_mask.py` (the kata, not its tests) runs the kata's tests."""
    path = Path(config.invocation_params.dir, arg.split("::")[0]).resolve()
    for kata in manifest.katas():
        if path in (kata.file, kata.reference_file) and kata.test_file.is_file():
            return str(kata.test_file)
    return arg


# A plain `pytest katas/...` ends the run when one kata test runs longer than this (pytest-timeout's
# "thread" method: it prints where every thread was and exits), so an infinite loop never hangs it.
# The "signal" method would fail only the test, but a Hypothesis test catches that failure and
# shrinks, running the loop again with no timer left. The slowest reference test (GPT-2 small's
# full size) takes about 11 s alone, 25 s on two busy cores. Another limit: KATA_TEST_TIMEOUT=N,
# or pytest's --timeout N (what the runner passes, with the signal method and budgets behind it).
DEFAULT_KATA_TIMEOUT = 120.0


def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
    if config.getoption("timeout", None) is not None or config.getini("timeout") or os.environ.get("PYTEST_TIMEOUT"):
        return
    limit = float(os.environ.get("KATA_TEST_TIMEOUT") or DEFAULT_KATA_TIMEOUT)
    for item in items:
        if manifest.for_test_file(item.path) is not None and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(limit, method="thread"))


def pytest_report_header(config: pytest.Config) -> str:
    where = "; run in a worker process of its own per kata (--isolate)" if isolation.active() else ""
    return loader.describe_under_test() + where


def pytest_runtest_teardown(item: pytest.Item, nextitem: "pytest.Item | None") -> None:
    """A kata's worker lives as long as its tests: stopped (and all it started killed) after the last."""
    if isolation.active() and (nextitem is None or nextitem.path != item.path):
        kata = manifest.for_test_file(item.path)
        if kata is not None:
            isolation.stop(kata.id)


def pytest_runtest_setup(item: pytest.Item) -> None:
    torch.manual_seed(0)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """Turn a stub's NotImplementedError, or a kata file that does not import, into one clear
    message instead of a traceback; and record what kind of failure it was (harness.run.results)."""
    take_recognised(), take_shape_failure()  # nothing carried over from another test
    try:
        return (yield)
    except BaseException as error:
        shape = take_shape_failure() and isinstance(error, pytest.fail.Exception)
        item.user_properties.append((FAILURE_KIND, (FailureKind.SHAPE if shape else failure_kind(error)).value))
        if take_recognised():
            item.user_properties.append((RECOGNISED, True))
        if not isinstance(error, (NotImplementedError, KataImportError, TypeCheckError, ExceptionGroup, isolation.WorkerCrashed)):
            message = _explain_crash(item, error)
            if message is None:
                raise
        else:
            message = _explain(item, error)
        if message is None:
            raise
    pytest.fail(message, pytrace=False)  # outside the except: no "during handling" chain



def failure_kind(error: BaseException) -> FailureKind:
    """The kind of a failure, by the exception's type."""
    if isinstance(error, ExceptionGroup) and error.exceptions:
        return failure_kind(error.exceptions[0])
    if isinstance(error, NotImplementedError):
        return FailureKind.NOT_IMPLEMENTED
    if isinstance(error, KataImportError):
        return FailureKind.IMPORT_ERROR
    if isinstance(error, TypeCheckError):
        return FailureKind.TYPE_CHECK
    if isinstance(error, isolation.WorkerCrashed):
        return FailureKind.CRASH
    if isinstance(error, RemoteError):
        return FailureKind.FORBIDDEN if error.remote_type == "GradingForbidden" else FailureKind.ERROR
    if isinstance(error, (AssertionError, pytest.fail.Exception)):
        return FailureKind.ASSERTION
    return FailureKind.ERROR


def _explain(item: pytest.Item, error: BaseException) -> "str | None":
    if isinstance(error, ExceptionGroup):
        matched, rest = error.split((NotImplementedError, KataImportError, TypeCheckError))
        if matched is None or rest is not None:
            return None
        error = matched.exceptions[0]
    if isinstance(error, (KataImportError, isolation.WorkerCrashed)):
        return str(error)
    kata = manifest.for_test_file(item.path)
    if kata is None:
        return None
    source = loader.source_under_test(kata)
    file = kata.relative(source)
    if isinstance(error, TypeCheckError):
        frames = [frame for frame in traceback.extract_tb(error.__traceback__) if Path(frame.filename).resolve() == source]
        line = (frames[-1].lineno, frames[-1].line) if frames else None
        if isinstance(error, RemoteError) and error.learner_line:  # raised in the worker: it told us where
            line = tuple(error.learner_line[1:])
        where = f" (from {file}, line {line[0]}: {line[1]})" if line else f" ({file})"
        return f"a shape or dtype does not match a signature's annotations{where}.\n{error}\nStuck? {hint_command(kata)}"
    return (
        f"not implemented yet: `{kata.symbol}` in {file} still raises NotImplementedError.\n"
        f"Replace that line with your solution. Stuck? {hint_command(kata)}"
    )


# What an exception raised in the learner's own code usually means, by a piece of its message.
_CRASH_HINTS = [
    (("does not require grad", "does not have a grad_fn", "modified by an inplace operation"),
     "Something in your code cut the autograd graph or wrote in place into a tensor it needs: look for .detach(), "
     ".data, .item(), torch.no_grad(), torch.tensor(a_tensor) or an in-place op (x += ..., masked_fill_) on that path."),
    (("same device", "meta", "device type"),
     "Tensors on different devices: create new tensors with device=x.device (or torch.zeros_like(x), x.new_zeros(...))."),
    (("only supports boolean masks", "must be a bool tensor", "expected a boolean tensor"),
     "A mask given to masked_fill or torch.where must be boolean: build it as booleans (dtype=torch.bool, or a "
     "comparison such as j > i), not from torch.ones(...) of floats."),
    (("tensors used as indices must be", "indices should be either on cpu or on the same device"),
     "Tensors that index (token ids, positions) must be integers (long or int) on the indexed tensor's device."),
    (("scalar type", "dtype", "Float but found", "Double but found", "BFloat16"),
     "Tensors of different dtypes: create new tensors with dtype=x.dtype (or torch.zeros_like(x)), never a fixed float32."),
    (("shape", "size of tensor", "cannot be multiplied", "must match the size", "einsum", "dimension", "out of range",
      "out of bounds", "expand", "view size", "invalid for input of size"),
     "A shape mismatch: print the shapes of the tensors on that line and compare them with the axis names in the "
     "signature (which axis is which, and in what order)."),
]


def _explain_crash(item: pytest.Item, error: BaseException) -> "str | None":
    """An exception raised inside the learner's own code, as a few lines: where in their file, the
    exception, a hint that fits it; none of torch's, nn.Module's, Hypothesis' or the harness's frames.
    None (the usual traceback) for assertion failures, with --tb=long, or when the learner's file
    is not in the traceback."""
    if isinstance(error, (AssertionError, pytest.fail.Exception, pytest.skip.Exception, KeyboardInterrupt, SystemExit)):
        return None
    if getattr(item.config.option, "tbstyle", "auto") in ("long", "native"):
        return None
    kata = manifest.for_test_file(item.path)
    if kata is None:
        return None
    source = loader.source_under_test(kata)
    file = kata.relative(source)
    line = None
    if isinstance(error, RemoteError):  # raised in the worker: it told us where
        if error.learner_line:
            line = tuple(error.learner_line[1:])
    else:
        frames = [frame for frame in traceback.extract_tb(error.__traceback__) if Path(frame.filename).resolve() == source]
        if frames:
            line = (frames[-1].lineno, frames[-1].line)
    autograd = any(key in str(error) for key in _CRASH_HINTS[0][0])
    if line is None and not autograd:  # a backward through what the code returned fails in the test: still theirs
        return None
    name = getattr(error, "remote_type", None) if isinstance(error, RemoteError) else None
    name = name or type(error).__name__
    text = str(error).strip() or "(no message)"
    if len(text) > 600:
        text = text[:600] + " ..."
    hint = next((advice for keys, advice in _CRASH_HINTS if any(key in text for key in keys)),
                "The exception comes from your code, not from the tests: read the line above and what it was given.")
    example = _falsifying_example(error)
    first, _, rest = text.partition("\n")
    return "\n".join(part for part in (
        # The first line says what went wrong (`kata` shows only that line), the next where.
        f"your code raised {name}: {first}" if line else f"the backward pass through what {file} returned raised {name}: {first}",
        f"  in {file}, line {line[0]}: {line[1].strip()}" if line else "",
        rest,
        example,
        hint,
        f"Stuck? {hint_command(kata)}   (the whole traceback: pytest --tb=long)",
    ) if part)


def _falsifying_example(error: BaseException) -> str:
    """Hypothesis' note on the failing example, without the fixtures and long reprs."""
    for note in getattr(error, "__notes__", ()):
        if note.startswith(("Falsifying example", "Failing test case")):
            lines = [each.strip().rstrip(",") for each in note.splitlines()[1:-1]]
            kept = [each for each in lines if not each.startswith("device=")]
            return "With " + ", ".join(kept) if kept else ""
    return ""


def hint_command(kata: manifest.Kata) -> str:
    return f"kata hint {kata.id}"


@pytest.fixture(scope="session")
def device(request: pytest.FixtureRequest) -> torch.device:
    return torch.device(request.config.getoption("--device"))  # --device cuda without CUDA stops in pytest_configure
