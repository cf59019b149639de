"""The constructor options and arguments torch users pass (issue #25 item 5): torch's positional
order, ``from_pretrained``, ``dtype``/``device``, ``per_sample_weights``' gradient, and ``out=``
tensors that require grad; each against torch's own behaviour."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

import embedkit  # noqa: E402
import embedkit.torch as ek_torch  # noqa: E402


def test_positional_arguments_follow_torchs_order():
    plain = ek_torch.Embedding(10, 3, 2)  # padding_idx third, as torch's
    assert plain.padding_idx == 2
    bag = ek_torch.EmbeddingBag(10, 3, None, 2.0, False, "sum")  # max_norm third, mode sixth
    assert bag.mode == "sum"
    with pytest.raises(TypeError, match=r"max_norm must be a number or None, got 'sum'; .* torch's order"):
        ek_torch.EmbeddingBag(10, 3, "sum")  # embedkit's old order
    reference = torch.nn.EmbeddingBag(10, 3, None, 2.0, False, "sum")
    assert reference.mode == bag.mode


@pytest.mark.parametrize("freeze", [True, False])
def test_from_pretrained_keeps_the_matrix_and_freezes_as_torch(freeze):
    matrix = torch.randn(12, 4)
    matrix[5] = 3.0  # a pretrained padding row, kept as it is
    module = ek_torch.Embedding.from_pretrained(matrix, freeze=freeze, padding_idx=5, optimizer="sgd", lr=1.0)
    reference = torch.nn.Embedding.from_pretrained(matrix, freeze=freeze, padding_idx=5)
    ids = torch.tensor([[5, 1], [2, 5]])
    torch.testing.assert_close(module(ids), reference(ids), rtol=0, atol=0)
    out = module(ids)
    assert out.requires_grad == (not freeze) == reference(ids).requires_grad
    if not freeze:
        out.sum().backward()
        assert module.table.step == 1
        torch.testing.assert_close(module.weight[5], matrix[5], rtol=0, atol=0)
    bag = ek_torch.EmbeddingBag.from_pretrained(matrix, freeze=freeze, mode="sum", padding_idx=5)
    reference_bag = torch.nn.EmbeddingBag.from_pretrained(matrix, freeze=freeze, mode="sum", padding_idx=5)
    torch.testing.assert_close(bag(ids), reference_bag(ids), rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="expected to be 2-dimensional"):
        ek_torch.Embedding.from_pretrained(torch.zeros(3))
    with pytest.raises(ValueError, match=r"weight shape \(12, 4\) is not compatible"):
        ek_torch.Embedding(12, 4, _weight=torch.zeros(11, 4))


def test_dtype_and_device_arguments():
    ek_torch.Embedding(10, 3, dtype=torch.float32, device="cpu")
    module = ek_torch.Embedding(10, 3, device=torch.device("cpu"))
    assert module.table.placement["device"] == "cpu"
    assert module.table.get_config()["placement"] == "cpu"
    for dtype in (torch.float64, torch.int8):
        with pytest.raises(NotImplementedError, match=f"float32, float16 or bfloat16 rows; dtype={dtype}"):
            ek_torch.EmbeddingBag(10, 3, dtype=dtype)
    with pytest.raises(NotImplementedError, match="CPU or a CUDA device, not on meta"):
        ek_torch.Embedding(10, 3, device="meta")
    with pytest.raises(NotImplementedError, match="cuda:0; cuda:1 is not supported"):
        ek_torch.Embedding(10, 3, device="cuda:1")
    with pytest.raises(ValueError, match="device='cpu' and placement='cuda' disagree"):
        ek_torch.Embedding(10, 3, device="cpu", placement="cuda")
    if not torch.cuda.is_available():
        # A CUDA device asks for a CUDA table: here the placement rules' clear refusal.
        with pytest.raises(embedkit.Error, match="placement 'cuda' was requested"):
            ek_torch.Embedding(10, 3, device="cuda")


def test_per_sample_weights_get_torchs_gradient_in_sum_mode():
    torch.manual_seed(4)
    reference = torch.nn.EmbeddingBag(20, 5, mode="sum", padding_idx=3)
    module = ek_torch.EmbeddingBag(20, 5, mode="sum", padding_idx=3, optimizer="sgd", lr=0.1)
    module.set_weight(reference.weight)
    ids = torch.tensor([1, 3, 7, 7, 0, 19, 3])
    offsets = torch.tensor([0, 3, 3, 5])  # an empty bag
    weights = torch.randn(7, requires_grad=True)
    weights_ref = weights.detach().clone().requires_grad_(True)
    target = torch.randn(4, 5)
    ((module(ids, offsets, weights) - target) ** 2).sum().backward()
    ((reference(ids, offsets, weights_ref) - target) ** 2).sum().backward()
    torch.testing.assert_close(weights.grad, weights_ref.grad, rtol=1e-5, atol=1e-6)
    assert weights.grad[1] == 0 and weights.grad[6] == 0  # padding entries
    # The table stepped with the weighted gradient, as torch's SGD would.
    with torch.no_grad():
        reference.weight -= 0.1 * reference.weight.grad
    torch.testing.assert_close(module.weight, reference.weight.detach(), rtol=1e-5, atol=1e-6)
    # A frozen table still gives per_sample_weights their gradient, and does not step.
    module.requires_grad_(False)
    again = torch.ones(7, requires_grad=True)
    module(ids, offsets, again).sum().backward()
    assert again.grad is not None and module.table.step == 1


def test_out_tensors_that_require_grad_are_refused_as_torch_refuses_in_place_writes():
    table = embedkit.Embedding(10, 3)
    ids = np.array([1, 2])
    leaf = torch.zeros(2, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place operation"):
        table(ids, out=leaf)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad"):
        leaf.add_(1)  # torch's own refusal, in the same words
    with pytest.raises(RuntimeError, match="out requires grad"):
        table(ids, out=leaf * 1)
    with pytest.raises(RuntimeError, match="a leaf Variable"):
        table.pooled(np.array([1, 2]), np.array([0, 2]), out=torch.zeros(1, 3, requires_grad=True))
    assert torch.equal(leaf, torch.zeros(2, 3))
    with torch.no_grad():  # where torch allows the write, so does embedkit
        table(ids, out=leaf)
    torch.testing.assert_close(leaf.detach(), torch.from_numpy(table(ids)), rtol=0, atol=0)


@pytest.mark.parametrize("norm_type", [1.0, 2.0, 3.0, float("inf")])
def test_max_norm_renormalises_the_looked_up_rows_in_the_table_as_torch(norm_type):
    torch.manual_seed(5)
    matrix = torch.randn(15, 6) * 3  # most rows' norms above 1.5
    matrix[2] *= 0.01  # one below
    reference = torch.nn.Embedding.from_pretrained(matrix.clone(), freeze=False, max_norm=1.5, norm_type=norm_type)
    module = ek_torch.Embedding.from_pretrained(matrix, freeze=False, max_norm=1.5, norm_type=norm_type)
    ids = torch.tensor([[2, 7, 7], [0, 11, 2]])  # duplicates renormalised once
    torch.testing.assert_close(module(ids), reference(ids), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(module.weight, reference.weight.detach(), rtol=1e-6, atol=1e-6)  # in the table
    untouched = [r for r in range(15) if r not in (0, 2, 7, 11)]
    torch.testing.assert_close(module.weight[untouched], matrix[untouched], rtol=0, atol=0)
    bags = ek_torch.EmbeddingBag.from_pretrained(matrix, max_norm=1.5, norm_type=norm_type, mode="sum")
    reference_bags = torch.nn.EmbeddingBag.from_pretrained(matrix.clone(), max_norm=1.5, norm_type=norm_type, mode="sum")
    torch.testing.assert_close(bags(ids), reference_bags(ids), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(bags.weight, reference_bags.weight.detach(), rtol=1e-6, atol=1e-6)
    assert "max_norm=1.5" in repr(module)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_reduced_precision_rows(dtype):
    """``dtype=torch.float16 / torch.bfloat16``: the rows are stored in that type (read back as
    float32, every value one of the type's), set_weight rounds as torch's own conversion does, and a
    train step moves the touched rows and keeps them in the type; modes from EmbeddingBag too."""
    name = str(dtype).replace("torch.", "")
    module = ek_torch.Embedding(50, 8, dtype=dtype, seed=3)
    assert module.table.get_config()["dtype"] == name
    assert module.table.get_config()["rounding"] == "stochastic"
    weight = module.weight
    assert weight.dtype == torch.float32
    torch.testing.assert_close(weight, weight.to(dtype).float(), rtol=0, atol=0)
    values = torch.randn(50, 8) * 100
    module.set_weight(values)
    torch.testing.assert_close(module.weight, values.to(dtype).float(), rtol=0, atol=0)
    module.set_weight(torch.randn(50, 8) * 0.1)  # a step of 0.01 is many spacings of the type here
    before = module.weight
    ids = torch.tensor([1, 2, 2, 7])
    out = module(ids)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, before[ids], rtol=0, atol=0)
    out.sum().backward()
    after = module.weight
    assert not torch.equal(after[2], before[2]) and torch.equal(after[3], before[3])
    torch.testing.assert_close(after, after.to(dtype).float(), rtol=0, atol=0)
    with pytest.raises(RuntimeError):  # a copy of the rows, not a view of them
        module.weight.add_(1.0)
    assert "weight" in module.state_dict()
    bag = ek_torch.EmbeddingBag(20, 4, mode="sum", dtype=dtype, rounding="nearest")
    assert bag.table.get_config()["rounding"] == "nearest"
    expected = bag.weight[torch.tensor([0, 1, 3])].sum(dim=0)
    torch.testing.assert_close(bag(torch.tensor([[0, 1, 3]]))[0], expected, rtol=1e-6, atol=1e-6)
