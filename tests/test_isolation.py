"""Isolated runs (harness.checker.isolation, harness.sandbox.wire, harness.sandbox.worker): what crosses between the checker
and a kata's worker comes back as it would in one process, and the worker is walled in.

Each test swaps a small file of its own in for one kata and calls it through `under_test`, as
the suites do, with isolation on."""
import math
import os
import sys
import tempfile
import textwrap

import pytest
import torch

from harness import loader, manifest
from harness.checker import isolation
from harness.config import Config
from harness.sandbox.wire import RemoteError
from harness.testing import reference, under_test
from harness.testing.data import randomize_parameters_

pytestmark = pytest.mark.subprocess  # starts processes of its own: not in make quick

KATA = "mlp.gelu_new"  # a kata with no dependencies: its worker holds nothing of reference/ it could use


@pytest.fixture
def isolated(tmp_path):
    """`isolated(source)` is the kata's symbol, written as `source`, running in a worker."""
    before = (loader._under_test_root, dict(loader._swaps))

    def make(source: str, kata_id: str = KATA, contain: bool = True):
        isolation._settings.contain = contain  # False: as without root (no namespaces), whoever runs the tests
        kata = manifest.get(kata_id)
        path = tmp_path / f"{kata.name}.py"
        path.write_text(textwrap.dedent(source))
        loader.configure(reference=False, swaps={kata_id: path})
        isolation.stop(kata_id)
        return under_test(kata_id)

    isolation.enable()
    yield make
    isolation.disable()
    loader._under_test_root, loader._swaps = before


ECHO = """
def gelu_new(*args, **kwargs):
    return args, kwargs
"""


def test_values_cross_as_they_are(isolated):
    echo = isolated(ECHO)
    tensors = [torch.randn(3, 4), torch.randn(2, 3, dtype=torch.float64), torch.randn(4).to(torch.bfloat16),
               torch.arange(6).reshape(2, 3).t(), torch.tensor(True), torch.zeros(0, 5), torch.tensor(float("nan"))]
    plain = [None, True, 0, -3, 2.5, math.inf, "text", [1, [2]], (1, "a"), {3: 0.5, "k": (None,)}, torch.float16,
             torch.device("cpu"), slice(1, None, 2), Config(d_model=8, n_heads=2, n_layers=1, d_vocab=5, n_ctx=4)]
    args, kwargs = echo(*tensors, *plain, key=torch.ones(2))
    for sent, got in zip(tensors, args):
        assert isinstance(got, torch.Tensor) and got.dtype == sent.dtype and got.shape == sent.shape
        assert torch.equal(got, sent) or (sent.isnan().all() and got.isnan().all())
    assert list(args[len(tensors):]) == plain and type(args[len(tensors) + 8]) is tuple
    assert torch.equal(kwargs["key"], torch.ones(2))


def test_in_place_writes_and_identity_come_back(isolated):
    scale = isolated("""
    def gelu_new(x, y):
        x.mul_(2)
        y[0] = -1.0
        return x
    """)
    x, y = torch.ones(3), torch.zeros(2, 2)
    view = y[1]
    result = scale(x, view)
    assert result is x, "a kata that returns its input gives back the very same tensor"
    assert torch.equal(x, torch.full((3,), 2.0)) and torch.equal(y, torch.tensor([[0.0, 0.0], [-1.0, 0.0]]))


def test_random_state_and_generators_are_shared(isolated):
    draw = isolated("""
    import torch
    def gelu_new(generator):
        return torch.rand(3), torch.rand(2, generator=generator)
    """)
    torch.manual_seed(7)
    generator = torch.Generator().manual_seed(3)
    remote, remote_generated = draw(generator)
    after_remote = torch.rand(1), torch.rand(1, generator=generator)
    torch.manual_seed(7)
    generator = torch.Generator().manual_seed(3)
    local, local_generated = torch.rand(3), torch.rand(2, generator=generator)
    after_local = torch.rand(1), torch.rand(1, generator=generator)
    assert torch.equal(remote, local) and torch.equal(remote_generated, local_generated)
    assert all(torch.equal(a, b) for a, b in zip(after_remote, after_local)), "the draws advance the checker's states too"


def test_a_module_stand_in_trains_like_the_module(isolated):
    kata = "embeddings.token_embedding"
    isolated(manifest.get(kata).reference_file.read_text(), kata)
    cfg = Config(d_model=4, n_heads=1, n_layers=1, d_vocab=7, n_ctx=5)
    theirs = randomize_parameters_(reference(kata)(cfg), 0, cfg.d_model)
    mine = under_test(kata)(cfg)
    mine.load_state_dict(theirs.state_dict())
    assert [name for name, _ in mine.named_parameters()] == [name for name, _ in theirs.named_parameters()]
    tokens = torch.tensor([[0, 6, 6, 2]])
    (mine(tokens) ** 2).sum().backward()
    (theirs(tokens) ** 2).sum().backward()
    assert torch.equal(mine.W_E.grad, theirs.W_E.grad), "gradients come back across the wire"
    optimizer = torch.optim.SGD(mine.parameters(), lr=0.5)
    optimizer.step()
    with torch.no_grad():
        theirs.W_E -= 0.5 * theirs.W_E.grad
    assert torch.allclose(mine(tokens), theirs(tokens)), "a step taken here is seen there"
    assert mine.to(torch.float64)(tokens).dtype == torch.float64
    mine.eval()
    assert not mine.training and mine.cfg == cfg


def test_callbacks_and_their_exceptions_come_back_as_themselves(isolated):
    call = isolated("""
    def gelu_new(callback, x):
        return callback(x + 1) * 2
    """)
    assert torch.equal(call(lambda t: t * 10, torch.ones(2)), torch.full((2,), 40.0))

    def fails(_):
        pytest.fail("the test's own check")

    with pytest.raises(pytest.fail.Exception, match="the test's own check"):
        call(fails, torch.ones(1))


def test_errors_keep_their_type_and_the_learners_line(isolated):
    check = isolated("""
    def gelu_new(k):
        if k < 0:
            raise ValueError(f"k must be at least 0, got {k}")
        return k
    """)
    with pytest.raises(ValueError, match="got -1") as raised:
        check(-1)
    assert isinstance(raised.value, RemoteError) and raised.value.learner_line[1] == 4
    assert check(0) == 0, "the worker goes on after an exception"


def test_a_reference_model_is_rebuilt_in_the_worker_and_its_hooks_called_back(isolated):
    run = isolated("""
    def generate(model, tokens):
        return model(tokens), type(model).__module__
    """, "sampling.generate")
    cfg = Config(d_model=8, n_heads=2, n_layers=1, d_vocab=11, n_ctx=8)
    model = randomize_parameters_(reference("model.gpt2")(cfg), 1, cfg.d_model).eval()
    seen = []
    model.embed.register_forward_hook(lambda module, args, output: seen.append(args[0].shape[1]))
    tokens = torch.tensor([[1, 2, 3]])
    logits, where = run(model, tokens)
    assert where == "reference.model.gpt2", "the model runs in the worker, not through a stand-in"
    assert torch.allclose(logits, model(tokens)) and seen == [3, 3]


@pytest.mark.parametrize("contain", [True, False], ids=["contained", "as-without-root"])
def test_the_worker_may_not_write_spawn_connect_or_read_solutions(contain, isolated, tmp_path):
    attempt = isolated("""
    import os, socket, subprocess
    def gelu_new(what, where):
        if what == "write":
            open(where, "w").write("x")
        elif what == "spawn":
            subprocess.run(["true"])
        elif what == "connect":
            socket.create_connection(("127.0.0.1", 9))
        elif what == "read":
            return open(where).read()
        return "done"
    """, contain=contain)
    solution = manifest.get("attention.causal_mask").reference_file
    for what, where in [("write", str(tmp_path / "canary")), ("spawn", ""), ("connect", ""), ("read", str(solution))]:
        with pytest.raises(PermissionError, match="not allowed while a kata is graded"):
            attempt(what, where)
    assert not (tmp_path / "canary").exists()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="seccomp is Linux's")
@pytest.mark.parametrize("contain", [True, False], ids=["contained", "as-without-root"])
def test_the_kernel_refuses_what_raises_no_audit_event(contain, isolated):
    # pidfd_open and pidfd_send_signal raise no audit event: only the seccomp filter stands in the way.
    attempt = isolated("""
    import os, signal
    def gelu_new(what):
        if what == "pidfd_open":
            os.pidfd_open(os.getpid())
        elif what == "pidfd_send_signal":
            signal.pidfd_send_signal(0, signal.SIGKILL)
        return "done"
    """, contain=contain)
    for what in ("pidfd_open", "pidfd_send_signal"):
        with pytest.raises(PermissionError, match="Operation not permitted"):
            attempt(what)
    assert any(line.startswith("seccomp filter") for line in isolation.protections_seen[KATA])


@pytest.mark.parametrize("contain", [True, False], ids=["contained", "as-without-root"])
def test_a_file_beside_the_workers_own_folders_is_hidden(contain, isolated):
    """/tmp holds the worker's code and scratch folders, so /tmp itself stays visible: the files
    lying in it (a git bundle of the grader, a copy of a solution) must not."""
    planted = tempfile.NamedTemporaryFile("w", dir=tempfile.gettempdir(), prefix="kata-planted-", suffix=".py", delete=False)
    with planted:
        planted.write(manifest.get("attention.causal_mask").reference_file.read_text())
    look = isolated("""
    import os, stat
    def gelu_new(path, how):
        if how == "stat":
            return stat.S_ISCHR(os.stat(path).st_mode)  # os.stat raises no audit event: the mounts alone decide
        return open(path).read()
    """, contain=contain)
    try:
        with pytest.raises(PermissionError, match="not allowed while a kata is graded"):
            look(planted.name, "read")
        if contain and sys.platform.startswith("linux") and "no namespaces" not in " ".join(isolation.protections_seen[KATA]):
            assert look(planted.name, "stat"), "the planted file is not covered by /dev/null in the worker's mounts"
    finally:
        os.unlink(planted.name)


def test_a_crash_fails_the_test_and_the_next_one_gets_a_fresh_worker(isolated):
    crash = isolated("""
    import os, time
    STARTED = time.monotonic_ns()  # when this worker imported the file
    def gelu_new(x):
        if x:
            os._exit(3)
        return STARTED
    """)
    first = crash(0)
    with pytest.raises(isolation.WorkerCrashed, match="exit code"):
        crash(1)
    assert crash(0) != first


def test_reference_and_own_parts_are_out_of_reach(isolated):
    reach = isolated("""
    def gelu_new(how):
        if how == "import":
            import reference.mlp.gelu_new
        from harness import parts
        return parts.gelu_new
    """)
    with pytest.raises(ImportError, match="may not import the reference"):
        reach("import")
    with pytest.raises(Exception, match="this kata's own solution"):
        reach("parts")


@pytest.mark.skipif(os.geteuid() != 0 if hasattr(os, "geteuid") else True, reason="containment by namespaces needs root")
def test_as_root_the_worker_is_walled_in_by_the_system(isolated):
    isolated(ECHO)(1)
    protections = " ".join(isolation.protections_seen[KATA])
    assert "PID namespace" in protections and "no network" in protections and "read-only filesystem" in protections


def test_the_checkers_objects_cannot_be_walked_from_the_worker(isolated):
    walk = isolated("""
    def gelu_new(callback):
        # Past the stand-in, straight to the wire: the checker itself refuses.
        return callback._peer.request("getattr", target=callback, name="__globals__")
    """)
    with pytest.raises(AttributeError, match="out of reach"):
        walk(lambda x: x)


def test_a_module_stand_in_moved_to_another_kind_of_device_moves_there_too(isolated):
    kata = "embeddings.positional_embedding"
    isolated(manifest.get(kata).reference_file.read_text(), kata)
    cfg = Config(d_model=4, n_heads=1, n_layers=1, d_vocab=7, n_ctx=5)
    module = under_test(kata)(cfg).to("meta")  # new Parameter objects: followed across the wire
    out = module(torch.zeros(2, 3, dtype=torch.long, device="meta"))
    assert out.device.type == "meta" and tuple(out.shape) == (2, 3, 4)
