"""Tests for katas/training/batches.py (shuffled_batches)."""
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from harness.testing import reference, stuck, under_test
from harness.testing.asserts import check_shape, check_tensor

KATA = "training.batches"
shuffled_batches = under_test(KATA)


def numbered_windows(n_windows, n_ctx, device):
    """Window i holds the numbers 100 i, 100 i + 1, ...: its first entry says which window it is."""
    return (100 * torch.arange(n_windows)[:, None] + torch.arange(n_ctx)).to(device)


def generator(seed):
    return torch.Generator().manual_seed(seed)


def epoch(n_windows, batch_size, seed, device, n_ctx=3):
    return shuffled_batches(numbered_windows(n_windows, n_ctx, device), batch_size, generator(seed))


@given(n_windows=st.integers(1, 30), batch_size=st.integers(1, 8), seed=st.integers(0, 100))
def test_batch_shapes(n_windows, batch_size, seed, device):
    batches = epoch(n_windows, batch_size, seed, device)
    sizes = [batch_size] * (n_windows // batch_size) + ([n_windows % batch_size] if n_windows % batch_size else [])
    assert isinstance(batches, list) and len(batches) == len(sizes), (
        f"{n_windows} windows in batches of {batch_size} make {len(sizes)} batches (the last one holds what is left); "
        f"got {len(batches) if isinstance(batches, list) else type(batches).__name__}.\n{stuck(KATA)}"
    )
    for number, (batch, size) in enumerate(zip(batches, sizes)):
        check_shape(batch, (size, 3), torch.int64, kata=KATA, what=f"batch {number}", axes="batch n_ctx", device=device)


@given(n_windows=st.integers(1, 30), batch_size=st.integers(1, 8), seed=st.integers(0, 100))
def test_an_epoch_uses_every_window_once_and_keeps_windows_whole(n_windows, batch_size, seed, device):
    everything = torch.cat(epoch(n_windows, batch_size, seed, device))
    assert (everything % 100 == torch.arange(3, device=device)).all(), (
        f"a batch holds a row that is not one of the windows: shuffle the windows, not the tokens inside them.\n{stuck(KATA)}"
    )
    used = sorted((everything[:, 0] // 100).tolist())
    assert used == list(range(n_windows)), (
        f"one epoch must use each of the {n_windows} windows exactly once; it used windows {used}.\n{stuck(KATA)}"
    )


def test_the_order_is_shuffled(device):
    order = torch.cat(epoch(50, 7, 0, device))[:, 0] // 100
    assert not torch.equal(order, torch.arange(50, device=device)), f"the windows come in reading order: shuffle them.\n{stuck(KATA)}"


def test_the_shuffle_draws_from_the_generator_only(device):
    torch.manual_seed(1)
    first = epoch(20, 4, 7, device)
    torch.manual_seed(2)
    second = epoch(20, 4, 7, device)
    for one, two in zip(first, second):
        assert torch.equal(one, two), (
            f"two generators seeded alike gave different batches: pass generator=generator to torch.randperm "
            f"(the global random state is not the generator).\n{stuck(KATA)}"
        )
    assert not all(torch.equal(a, b) for a, b in zip(first, epoch(20, 4, 8, device))), f"another seed should give another order.\n{stuck(KATA)}"


@given(n_windows=st.integers(1, 30), batch_size=st.integers(1, 8), seed=st.integers(0, 100))
def test_matches_reference_epoch_after_epoch(n_windows, batch_size, seed, device):
    windows = numbered_windows(n_windows, 3, device)
    mine, theirs = generator(seed), generator(seed)
    for number in range(2):  # the second epoch continues from the generator's state: a new order
        expected = reference(KATA)(windows, batch_size, theirs)
        actual = shuffled_batches(windows, batch_size, mine)
        assert len(actual) == len(expected), f"epoch {number}: {len(actual)} batches, expected {len(expected)}.\n{stuck(KATA)}"
        for index, (batch, expected_batch) in enumerate(zip(actual, expected)):
            check_tensor(batch, expected_batch, kata=KATA, what=f"epoch {number}, batch {index}", axes="batch n_ctx",
                         hint="The order is torch.randperm(len(windows), generator=generator), one draw per epoch.")


@pytest.mark.parametrize("batch_size", [1, 5])
def test_does_not_modify_the_windows(batch_size, device):
    windows = numbered_windows(7, 3, device)
    before = windows.clone()
    shuffled_batches(windows, batch_size, generator(0))
    assert torch.equal(windows, before), f"shuffled_batches changed the windows it was given.\n{stuck(KATA)}"
