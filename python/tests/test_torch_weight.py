"""``module.weight`` is the table (issue #25 item 2) and ``padding_idx`` means what it means in torch
(item 3), checked against torch's own modules."""
import gc

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

import embedkit  # noqa: E402
import embedkit.torch as ek_torch  # noqa: E402
from embedkit._torch_weight import read_only_copy  # noqa: E402


def test_writes_through_weight_reach_the_table():
    module = ek_torch.Embedding(20, 4, seed=1)
    torch.nn.init.zeros_(module.weight)
    assert np.all(module.table.embeddings == 0)
    module.weight[3] = 5.0
    assert np.all(module.table.embeddings[3] == 5.0)
    module.weight.data.normal_()
    values = module.table.embeddings
    assert np.all(values != 0) and np.any(values[3] != 5.0)
    ids = torch.tensor([3, 7])
    torch.testing.assert_close(module(ids), F.embedding(ids, torch.from_numpy(values)), rtol=0, atol=0)
    bag = ek_torch.EmbeddingBag(20, 4, mode="sum")
    with torch.no_grad():
        bag.weight.copy_(torch.ones(20, 4))
    torch.testing.assert_close(bag(torch.tensor([[1, 2]])), torch.full((1, 4), 2.0), rtol=0, atol=0)


def test_weight_sees_training_and_is_zero_copy():
    module = ek_torch.Embedding(20, 4, optimizer="sgd", lr=1.0)
    weight = module.weight
    assert weight.data_ptr() == module.weight.data_ptr()  # every view is the same memory
    before = weight[2].clone()
    module(torch.tensor([2])).sum().backward()
    torch.testing.assert_close(weight[2], before - 1.0, rtol=0, atol=0)  # the step shows through


def test_weight_keeps_the_table_alive():
    module = ek_torch.Embedding(20, 4, seed=2)
    expected = module.table.embeddings.copy()
    weight = module.weight
    del module
    gc.collect()
    torch.testing.assert_close(weight, torch.from_numpy(expected), rtol=0, atol=0)
    weight[0] = 1.0  # still the table's (live) memory


def test_migrate_refuses_while_a_weight_view_lives():
    module = ek_torch.Embedding(20, 4)
    weight = module.weight
    module.table.migrate("cpu")  # where it is: nothing replaced, allowed
    with pytest.raises(embedkit.Error) as refused:
        module.table.migrate("cuda")
    # A CUDA machine says EK_BUSY (a live view); a CPU-only build says there is no device first.
    assert refused.value.status_name in ("EK_BUSY", "EK_UNSUPPORTED")
    if refused.value.status_name == "EK_BUSY":
        assert isinstance(refused.value, embedkit.BusyError) and isinstance(refused.value, RuntimeError)
        assert "1 live view of its weights" in str(refused.value)
    del weight
    assert module.table.placement["device"] == "cpu"


def test_device_table_weight_is_a_copy_that_refuses_in_place_changes():
    """What a table in device memory returns (no GPU here: the tensor class itself)."""
    weight = read_only_copy(torch.arange(12.0).reshape(3, 4), "t", "cuda:0")
    for change in (lambda w: torch.nn.init.zeros_(w), lambda w: w.__setitem__(0, 5.0), lambda w: w.data.normal_(),
                   lambda w: w.add_(1), lambda w: w[1].zero_(), lambda w: w.detach().mul_(2),
                   lambda w: torch.add(w, 1, out=w)):
        with pytest.raises(RuntimeError, match=r"copy of table 't', which lives on cuda:0.*module.set_weight"):
            change(weight)
    torch.testing.assert_close(weight.as_subclass(torch.Tensor), torch.arange(12.0).reshape(3, 4), rtol=0, atol=0)
    plain = weight.clone()  # an explicit copy is the user's to change
    plain.zero_()
    assert type(plain) is torch.Tensor
    torch.testing.assert_close((weight * 2)[0, 1], torch.tensor(2.0), rtol=0, atol=0)


def test_padding_row_starts_at_zeros_reads_as_itself_and_never_trains():
    torch.manual_seed(0)
    reference = torch.nn.Embedding(10, 3, padding_idx=4)
    module = ek_torch.Embedding(10, 3, padding_idx=4, optimizer="sgd", lr=0.5)
    assert torch.equal(module.weight[4], torch.zeros(3))  # as torch's
    pretrained = torch.randn(10, 3)  # a non-zero padding row, returned as it is
    module.set_weight(pretrained)
    reference.weight.data.copy_(pretrained)
    ids = torch.tensor([[4, 1, 4], [0, 4, 9]])
    torch.testing.assert_close(module(ids), reference(ids), rtol=0, atol=0)
    optimizer = torch.optim.SGD(reference.parameters(), lr=0.5)
    reference(ids).pow(2).sum().backward()
    optimizer.step()
    module(ids).pow(2).sum().backward()
    torch.testing.assert_close(module.weight, reference.weight.detach(), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(module.weight[4], pretrained[4], rtol=0, atol=0)  # never updated
    negative = ek_torch.Embedding(10, 3, padding_idx=-1)  # torch's negative index counts from the end
    assert negative.padding_idx == 9 and torch.equal(negative.weight[9], torch.zeros(3))


def test_bag_padding_entries_are_left_out_whatever_the_row_holds():
    module = ek_torch.EmbeddingBag(10, 3, mode="mean", padding_idx=2)
    w = torch.randn(10, 3)  # padding row non-zero
    module.set_weight(w)
    ids, offsets = torch.tensor([2, 1, 2, 5, 2]), torch.tensor([0, 3, 4])
    expected = F.embedding_bag(ids, w, offsets, mode="mean", padding_idx=2)
    torch.testing.assert_close(module(ids, offsets), expected, rtol=1e-6, atol=1e-6)


def test_state_dict_weight_is_a_view_as_torchs_is():
    module = ek_torch.Embedding(6, 2)
    state = module.state_dict()
    module.weight[0] = 7.0
    assert torch.equal(state["weight"][0], torch.full((2,), 7.0))  # torch's state_dict shares storage too
    module.load_state_dict(state)  # its own memory: a no-op, not an overlap error
    assert torch.equal(module.weight[0], torch.full((2,), 7.0))
