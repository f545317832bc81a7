"""harness.devices.one_device: torch calls that mix devices raise, as on a GPU; what CUDA allows passes."""
import pytest
import torch

from harness.devices import active, one_device

META = torch.zeros(3, dtype=torch.long, device="meta")


def test_without_it_meta_lets_a_cpu_tensor_through_isin():
    torch.isin(META, torch.tensor([1, 2]))  # the hole: no error, on the meta device


@pytest.mark.parametrize("call", [lambda cpu: torch.isin(META, cpu), lambda cpu: torch.where(META > 0, META, cpu),
                                  lambda cpu: META.index_select(0, cpu)], ids=["isin", "where", "index_select"])
def test_a_cpu_tensor_meeting_a_meta_one_raises(call):
    with one_device():
        assert active()
        with pytest.raises(RuntimeError, match="cpu and meta"):
            call(torch.tensor([1, 2]))
    assert not active()


def test_what_cuda_allows_passes():
    with one_device():
        META + torch.tensor(3)  # a CPU scalar
        META[torch.tensor([0, 2])]  # CPU indices
        META[torch.tensor([0, 1])] = torch.tensor(5)
        torch.tensor([1, 2]).to("meta")
        torch.isin(META, torch.tensor([1, 2], device="meta"))


def test_disabled_it_changes_nothing():
    with one_device(False):
        assert not active()
        torch.isin(META, torch.tensor([1, 2]))
