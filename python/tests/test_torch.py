"""embedkit.torch against PyTorch itself (skipped where torch is not importable): F.embedding and
F.embedding_bag values, PyTorch's offsets conventions, and training with the optimizer fused into
backward equal to nn.EmbeddingBag(sparse=True) / nn.Embedding(sparse=True) + torch.optim.SGD."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

import embedkit.torch as ek_torch  # noqa: E402


def weights(rows=30, dim=5, seed=0, padding_idx=None):
    w = torch.from_numpy(np.random.default_rng(seed).standard_normal((rows, dim)).astype(np.float32))
    if padding_idx is not None:
        w[padding_idx] = 0  # PyTorch's padding row starts as zeros; embedkit reads it as zeros
    return w


def sgd(lr):
    return {"class_name": "SGD", "config": {"learning_rate": lr}}


@pytest.mark.parametrize("dtype", [torch.int32, torch.int64])
@pytest.mark.parametrize("padding_idx", [None, 3])
def test_embedding_values(dtype, padding_idx):
    module = ek_torch.Embedding(30, 5, padding_idx=padding_idx)
    w = weights(padding_idx=padding_idx)
    module.set_weight(w)
    ids = torch.tensor([[1, 3, 29], [3, 0, 7]], dtype=dtype)
    torch.testing.assert_close(module(ids), F.embedding(ids.long(), w, padding_idx=padding_idx), rtol=0, atol=0)
    torch.testing.assert_close(module.weight, w, rtol=0, atol=0)
    assert (module.num_embeddings, module.embedding_dim) == (30, 5)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
@pytest.mark.parametrize("include_last_offset", [False, True])
def test_embedding_bag_values(mode, include_last_offset):
    module = ek_torch.EmbeddingBag(30, 5, mode=mode, include_last_offset=include_last_offset)
    w = weights()
    module.set_weight(w)
    ids = torch.tensor([4, 8, 15, 16, 4, 4, 23, 29])
    offsets = torch.tensor([0, 2, 2, 7] + ([8] if include_last_offset else []))  # an empty bag
    expected = F.embedding_bag(ids, w, offsets, mode=mode, include_last_offset=include_last_offset)
    torch.testing.assert_close(module(ids, offsets), expected, rtol=1e-6, atol=1e-6)
    two_d = ids.reshape(2, 4)  # fixed-size bags, no offsets
    torch.testing.assert_close(module(two_d), F.embedding_bag(two_d, w, mode=mode), rtol=1e-6, atol=1e-6)


def test_embedding_bag_weights_padding_and_int32_offsets():
    module = ek_torch.EmbeddingBag(30, 5, mode="sum", padding_idx=2)
    w = weights(padding_idx=2)
    module.set_weight(w)
    ids = torch.tensor([1, 2, 5, 2, 9], dtype=torch.int32)
    offsets = torch.tensor([0, 3], dtype=torch.int32)
    sample = torch.tensor([0.5, 2.0, 1.5, 3.0, -1.0])
    expected = F.embedding_bag(ids.long(), w, offsets.long(), mode="sum", per_sample_weights=sample, padding_idx=2)
    torch.testing.assert_close(module(ids, offsets, sample), expected, rtol=1e-6, atol=1e-6)
    mean = ek_torch.EmbeddingBag(30, 5, mode="mean", padding_idx=2)
    mean.set_weight(w)
    torch.testing.assert_close(mean(ids, offsets), F.embedding_bag(ids.long(), w, offsets.long(), mode="mean", padding_idx=2),
                               rtol=1e-6, atol=1e-6)  # padding entries are not counted in the mean


def test_offsets_become_csr():
    module = ek_torch.EmbeddingBag(30, 5)
    ids, csr = module.csr_offsets(torch.tensor([1, 2, 3]), torch.tensor([0, 1], dtype=torch.int32))
    assert csr.tolist() == [0, 1, 3] and csr.dtype == torch.int64
    _, csr = module.csr_offsets(torch.zeros((3, 2), dtype=torch.int64), None)
    assert csr.tolist() == [0, 2, 4, 6]
    with_last = ek_torch.EmbeddingBag(30, 5, include_last_offset=True)
    _, csr = with_last.csr_offsets(torch.tensor([1, 2, 3]), torch.tensor([0, 1, 3]))
    assert csr.tolist() == [0, 1, 3]
    with pytest.raises(ValueError, match="offsets is required"):
        module(torch.tensor([1, 2]))
    with pytest.raises(IndexError, match=r"indices\[1\] = 30 is not in \[0, 30\)"):
        module(torch.tensor([1, 30]), torch.tensor([0, 1]))


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_bag_training_equals_sparse_embedding_bag_with_sgd(mode):
    torch.manual_seed(0)
    # PyTorch has no sparse gradient for max; plain SGD steps the same with its dense one.
    reference = torch.nn.EmbeddingBag(40, 6, mode=mode, sparse=mode != "max")
    optimizer = torch.optim.SGD(reference.parameters(), lr=0.1)
    module = ek_torch.EmbeddingBag(40, 6, mode=mode, optimizer=sgd(0.1))
    module.set_weight(reference.weight)
    rng = np.random.default_rng(1)
    for _ in range(5):
        ids = torch.from_numpy(rng.integers(0, 12, size=16))  # many duplicates: hot rows
        offsets = torch.tensor([0, 3, 3, 9, 10])
        target = torch.from_numpy(rng.standard_normal((5, 6)).astype(np.float32))
        optimizer.zero_grad()
        ((reference(ids, offsets) - target) ** 2).sum().backward()
        optimizer.step()
        ((module(ids, offsets) - target) ** 2).sum().backward()  # the step happens here
    torch.testing.assert_close(module.weight, reference.weight.detach(), rtol=1e-5, atol=1e-6)
    assert module.table.step == 5


def test_embedding_training_equals_sparse_embedding_with_sgd():
    torch.manual_seed(1)
    reference = torch.nn.Embedding(25, 4, sparse=True, padding_idx=0)
    optimizer = torch.optim.SGD(reference.parameters(), lr=0.05)
    module = ek_torch.Embedding(25, 4, padding_idx=0, optimizer="sgd", lr=0.05)
    module.set_weight(reference.weight)
    rng = np.random.default_rng(2)
    for _ in range(4):
        ids = torch.from_numpy(rng.integers(0, 25, size=(3, 7)))
        optimizer.zero_grad()
        reference(ids).pow(3).sum().backward()
        optimizer.step()
        module(ids).pow(3).sum().backward()
    torch.testing.assert_close(module.weight, reference.weight.detach(), rtol=1e-5, atol=1e-6)


def test_frozen_or_no_grad_never_steps():
    module = ek_torch.EmbeddingBag(10, 3, optimizer=sgd(1.0))
    before = module.weight
    with torch.no_grad():
        module(torch.tensor([[1, 2]]))
    module.requires_grad_(False)
    out = module(torch.tensor([[1, 2]]))
    assert not out.requires_grad
    torch.testing.assert_close(module.weight, before, rtol=0, atol=0)
    assert module.table.step == 0


def test_forward_outputs_reuse_freed_memory_and_are_rewritten_whole():
    """A large output freed by PyTorch returns to embedkit's output cache and backs the next
    forward's output; the new output holds this call's rows, not the old ones."""
    embedkit = pytest.importorskip("embedkit")
    embedkit.set_output_cache_capacity(1 << 30)
    module = ek_torch.Embedding(1000, 64)
    ids = torch.arange(8192) % 1000  # 2 MiB of output
    first = module(ids)
    address = first.data_ptr()
    first.fill_(float("nan"))
    del first
    second = module(ids)
    assert second.data_ptr() == address
    torch.testing.assert_close(second, F.embedding(ids, module.weight), rtol=0, atol=0)
    bags = ek_torch.EmbeddingBag(1000, 64, mode="mean", padding_idx=0)
    bag_ids = (torch.arange(3 * 4096) * 7) % 1000  # 4096 bags of 3: 1 MiB of output
    offsets = torch.arange(0, 3 * 4096, 3)
    pooled = bags(bag_ids, offsets)
    address = pooled.data_ptr()
    pooled.fill_(float("nan"))
    del pooled
    again = bags(bag_ids, offsets)
    assert again.data_ptr() == address
    expected = F.embedding_bag(bag_ids, bags.weight, offsets, mode="mean", padding_idx=0)
    torch.testing.assert_close(again, expected, rtol=1e-6, atol=1e-6)
    del second, again
    embedkit.set_output_cache_capacity(0)  # frees the cached blocks: a later forward maps anew
    third = module(ids)
    torch.testing.assert_close(third, F.embedding(ids, module.weight), rtol=0, atol=0)
    embedkit.set_output_cache_capacity(1 << 30)


def test_forward_output_outlives_its_module():
    module = ek_torch.Embedding(50, 8)
    ids = torch.tensor([[1, 2], [3, 4]])
    expected = module.weight[ids].clone()
    out = module(ids)
    del module
    torch.testing.assert_close(out, expected, rtol=0, atol=0)


def test_empty_batches_give_empty_outputs_and_train_nothing():
    module = ek_torch.Embedding(50, 8, optimizer=sgd(1.0))
    bags = ek_torch.EmbeddingBag(50, 8, mode="sum", optimizer=sgd(1.0))
    before, bags_before = module.weight.clone(), bags.weight.clone()
    rows = module(torch.empty((0, 3), dtype=torch.int64))
    assert rows.shape == (0, 3, 8)
    rows.sum().backward()
    pooled = bags(torch.empty(0, dtype=torch.int64), torch.empty(0, dtype=torch.int64))
    assert pooled.shape == (0, 8)
    pooled.sum().backward()
    torch.testing.assert_close(module.weight, before, rtol=0, atol=0)
    torch.testing.assert_close(bags.weight, bags_before, rtol=0, atol=0)


def test_state_dict_holds_exactly_weight_and_loads_both_ways():
    module = ek_torch.Embedding(30, 5)
    assert list(module.state_dict()) == ["weight"]
    torch.testing.assert_close(module.state_dict()["weight"], module.weight, rtol=0, atol=0)
    plain = torch.nn.Embedding(30, 5)
    module.load_state_dict(plain.state_dict())  # strict
    torch.testing.assert_close(module.weight, plain.weight.detach(), rtol=0, atol=0)
    other = ek_torch.Embedding(30, 5, seed=3)
    plain.load_state_dict(other.state_dict())  # and back, strict
    torch.testing.assert_close(plain.weight.detach(), other.weight, rtol=0, atol=0)
    bag, plain_bag = ek_torch.EmbeddingBag(30, 5, mode="sum"), torch.nn.EmbeddingBag(30, 5, mode="sum")
    bag.load_state_dict(plain_bag.state_dict())
    torch.testing.assert_close(bag.weight, plain_bag.weight.detach(), rtol=0, atol=0)
    # Inside a model: prefixed keys, no 'anchor'.
    model = torch.nn.Sequential(ek_torch.Embedding(30, 5), torch.nn.Linear(5, 1))
    assert sorted(model.state_dict()) == ["0.weight", "1.bias", "1.weight"]


def test_load_state_dict_refuses_what_torch_refuses():
    module = ek_torch.Embedding(30, 5)
    before = module.weight.clone()
    with pytest.raises(RuntimeError, match="size mismatch for weight"):
        module.load_state_dict({"weight": torch.zeros(31, 5)})
    with pytest.raises(RuntimeError, match="Missing key"):
        module.load_state_dict({})
    torch.testing.assert_close(module.weight, before, rtol=0, atol=0)  # nothing loaded
    module.load_state_dict({}, strict=False)  # nothing to load, nothing changes
    torch.testing.assert_close(module.weight, before, rtol=0, atol=0)
    # An unexpected key: torch loads the weight, then raises under strict; so does embedkit.
    reference = torch.nn.Embedding(30, 5)
    for target in (module, reference):
        with pytest.raises(RuntimeError, match="Unexpected key"):
            target.load_state_dict({"weight": torch.zeros(30, 5), "bias": torch.zeros(5)})
    torch.testing.assert_close(module.weight, reference.weight.detach(), rtol=0, atol=0)


def _train_once(module, ids):
    module(ids).pow(2).sum().backward()


@pytest.mark.parametrize("copy_kind", ["pickle", "deepcopy", "torch.save"])
def test_pickle_deepcopy_and_torch_save_keep_the_optimizer_state_and_step(copy_kind):
    import copy
    import io
    import pickle

    module = ek_torch.Embedding(40, 6, optimizer="adam", lr=0.05, placement="cpu")
    ids = torch.tensor([[1, 2, 2], [7, 1, 39]])
    _train_once(module, ids)
    if copy_kind == "pickle":
        clone = pickle.loads(pickle.dumps(module))
    elif copy_kind == "deepcopy":
        clone = copy.deepcopy(module)
    else:
        buffer = io.BytesIO()
        torch.save(module, buffer)
        buffer.seek(0)
        try:
            clone = torch.load(buffer, weights_only=False)
        except TypeError:  # PyTorch before 1.13.1 has no weights_only
            buffer.seek(0)
            clone = torch.load(buffer)
    assert clone.table.step == module.table.step == 1
    assert clone.table.placement["device"] == "cpu"
    torch.testing.assert_close(clone.weight, module.weight, rtol=0, atol=0)
    # The same optimizer state: one more identical step gives identical weights.
    _train_once(module, ids)
    _train_once(clone, ids)
    torch.testing.assert_close(clone.weight, module.weight, rtol=0, atol=0)
    # And they are independent tables.
    _train_once(clone, ids)
    assert clone.table.step == 3 and module.table.step == 2


def test_torch_constructor_options_are_accepted_or_refused_never_ignored():
    ek_torch.Embedding(10, 4, sparse=True)  # accepted: the gradient never exists densely anyway
    ek_torch.EmbeddingBag(10, 4, mode="sum", sparse=False)
    with pytest.raises(NotImplementedError, match="scale_grad_by_freq=True is not supported"):
        ek_torch.Embedding(10, 4, scale_grad_by_freq=True)
    with pytest.raises(NotImplementedError, match="scale_grad_by_freq"):
        ek_torch.EmbeddingBag(10, 4, scale_grad_by_freq=True)


@pytest.mark.parametrize("mode", ["mean", "max"])
def test_per_sample_weights_outside_sum_are_refused_as_torch_refuses(mode):
    bags = ek_torch.EmbeddingBag(10, 4, mode=mode)
    ids, offsets, weights = torch.tensor([1, 2, 3]), torch.tensor([0, 2]), torch.ones(3)
    with pytest.raises(NotImplementedError, match=f"only supported for mode='sum' \\(got mode='{mode}'\\)"):
        bags(ids, offsets, per_sample_weights=weights)
    with pytest.raises(NotImplementedError, match="only supported for mode='sum'"):
        F.embedding_bag(ids, bags.weight, offsets, mode=mode, per_sample_weights=weights)


def test_dtype_and_device_conversions_reach_the_table_or_raise():
    """On a GPU machine .cuda() would migrate the table; that path is untested here (no GPU)."""
    module = ek_torch.Embedding(10, 4)
    before = module.weight.clone()
    assert module.float() is module and module.to(torch.float32) is module and module.cpu() is module
    for convert in (lambda m: m.double(), lambda m: m.half(), lambda m: m.to(torch.bfloat16)):
        with pytest.raises(NotImplementedError, match="rows' type is chosen at creation"):
            convert(module)
    with pytest.raises(NotImplementedError, match="lives on the CPU or a CUDA device"):
        module.to("meta")
    if not torch.cuda.is_available():
        with pytest.raises(Exception):  # torch's own error, or the placement rules' (no device)
            module.cuda()
        assert module.table.placement["device"] == "cpu"
    model = torch.nn.Sequential(module, torch.nn.Linear(4, 1))
    with pytest.raises(NotImplementedError):
        model.double()
    torch.testing.assert_close(module.weight, before, rtol=0, atol=0)
    assert module(torch.tensor([1, 2])).dtype == torch.float32
