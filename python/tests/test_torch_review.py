"""An adversarial review of ``embedkit.torch`` against torch's own nn.Embedding / nn.EmbeddingBag /
torch.optim (issue #25). The first group pins behaviour that works and was untested (every common
scheduler, a torch optimizer over model.parameters(), clipping with norm types 1 and inf, pooled
accumulation with per_sample_weights and mixed id dtypes); the second group fails on real bugs."""
import warnings

import pytest

torch = pytest.importorskip("torch")

import embedkit.torch as ek_torch  # noqa: E402
from embedkit._torch_weight import read_only_copy  # noqa: E402

S = torch.optim.lr_scheduler
TORCH_MAJOR = int(torch.__version__.split(".")[0])


# -------------------------------------------------------------------------------------------------
# Behaviour that works: pinned


SCHEDULERS = {
    "multistep": lambda o: S.MultiStepLR(o, [1, 3], 0.1),
    "exponential": lambda o: S.ExponentialLR(o, 0.9),
    "cosine": lambda o: S.CosineAnnealingLR(o, 4),
    "cosine_restarts": lambda o: S.CosineAnnealingWarmRestarts(o, 2),
    "onecycle": lambda o: S.OneCycleLR(o, max_lr=1.0, total_steps=10, cycle_momentum=False),
    "linear": lambda o: S.LinearLR(o, 0.1, total_iters=3),
    "cyclic": lambda o: S.CyclicLR(o, 0.1, 1.0, step_size_up=2, cycle_momentum=False),
    "sequential": lambda o: S.SequentialLR(
        o, [S.ConstantLR(o, 0.5, total_iters=2), S.ExponentialLR(o, 0.9)], milestones=[2]),
    "chained": lambda o: S.ChainedScheduler([S.ConstantLR(o, 0.5, total_iters=2), S.ExponentialLR(o, 0.9)]),
    "plateau": lambda o: S.ReduceLROnPlateau(o, patience=0, factor=0.5),
}


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_every_common_scheduler_drives_the_table_as_it_drives_torch_sgd(name):
    torch.manual_seed(0)
    reference = torch.nn.Embedding(20, 3, sparse=True)
    reference_opt = torch.optim.SGD(reference.parameters(), lr=0.5)
    module = ek_torch.Embedding(20, 3, lr=0.5)
    module.set_weight(reference.weight)
    reference_sched, sched = SCHEDULERS[name](reference_opt), SCHEDULERS[name](module.optimizer)
    with warnings.catch_warnings():
        # torch 1.13's own SequentialLR warns about its epoch argument; the rest must not warn.
        warnings.simplefilter("ignore" if name == "sequential" and TORCH_MAJOR < 2 else "error")
        for _ in range(6):
            ids = torch.randint(0, 20, (5,))
            reference_opt.zero_grad()
            reference(ids).pow(2).sum().backward()
            reference_opt.step()
            module.optimizer.zero_grad()
            module(ids).pow(2).sum().backward()
            module.optimizer.step()
            for s in (reference_sched, sched):
                s.step(1.0) if name == "plateau" else s.step()
    assert module.optimizer.param_groups[0]["lr"] == pytest.approx(reference_opt.param_groups[0]["lr"])
    torch.testing.assert_close(module.weight, reference.weight.detach(), rtol=1e-6, atol=1e-6)


def test_a_torch_optimizer_over_model_parameters_leaves_the_table_to_its_own():
    """torch.optim.Adam(model.parameters()) holds the empty anchor too: it must not interfere."""
    torch.manual_seed(0)
    reference = torch.nn.Sequential(torch.nn.EmbeddingBag(20, 4, mode="sum"), torch.nn.Linear(4, 1))
    module = ek_torch.EmbeddingBag(20, 4, mode="sum", optimizer="sgd", lr=0.1)
    module.set_weight(reference[0].weight)
    model = torch.nn.Sequential(module, torch.nn.Linear(4, 1))
    model[1].load_state_dict(reference[1].state_dict())
    reference_tables = torch.optim.SGD(reference[0].parameters(), lr=0.1)
    reference_dense = torch.optim.Adam(reference[1].parameters(), lr=0.01)
    adam = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(5):
        x = torch.randint(0, 20, (3, 4))
        for optimizer in (reference_tables, reference_dense, adam):
            optimizer.zero_grad()
        reference(x).pow(2).sum().backward()
        reference_tables.step()
        reference_dense.step()
        model(x).pow(2).sum().backward()
        adam.step()
        module.optimizer.step()  # nothing pending: no second step
    assert module.table.step == 5
    torch.testing.assert_close(module.weight, reference[0].weight.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(model[1].weight, reference[1].weight, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("norm_type", [1.0, float("inf")])
def test_clip_grad_norm_with_norm_types_one_and_inf_and_a_padding_row(norm_type):
    torch.manual_seed(1)
    reference = torch.nn.Embedding(20, 4, padding_idx=2)
    reference_opt = torch.optim.SGD(reference.parameters(), lr=0.1)
    module = ek_torch.Embedding(20, 4, padding_idx=2, lr=0.1, step_in_backward=False)
    module.set_weight(reference.weight)
    for dtype in (torch.int32, torch.int64):  # mixed id dtypes across accumulated batches
        ids = torch.randint(0, 6, (8,))
        ids[:2] = 2
        reference(ids).pow(2).sum().backward()
        module(ids.to(dtype)).pow(2).sum().backward()
    expected = torch.nn.utils.clip_grad_norm_(reference.parameters(), 0.5, norm_type=norm_type)
    total = module.optimizer.clip_grad_norm_(0.5, norm_type)
    torch.testing.assert_close(total, expected, rtol=1e-5, atol=1e-5)
    reference_opt.step()
    module.optimizer.step()
    torch.testing.assert_close(module.weight, reference.weight.detach(), rtol=1e-6, atol=1e-6)


def test_pooled_accumulation_with_and_without_per_sample_weights_across_batches():
    torch.manual_seed(2)
    reference = torch.nn.EmbeddingBag(20, 4, mode="sum", padding_idx=1)
    reference_opt = torch.optim.SGD(reference.parameters(), lr=0.1)
    module = ek_torch.EmbeddingBag(20, 4, mode="sum", padding_idx=1, lr=0.1, step_in_backward=False)
    module.set_weight(reference.weight)
    offsets = torch.tensor([0, 2, 2, 5])  # an empty bag too
    for i, dtype in enumerate((torch.int32, torch.int64, torch.int64)):
        ids = torch.randint(0, 20, (7,))
        ids[1] = 1
        weights = torch.rand(7, requires_grad=True) if i != 1 else None
        mine = None if weights is None else weights.detach().clone().requires_grad_()
        reference(ids, offsets, weights).pow(2).sum().backward()
        module(ids.to(dtype), offsets.to(dtype), mine).pow(2).sum().backward()
        if weights is not None:
            torch.testing.assert_close(mine.grad, weights.grad, rtol=1e-5, atol=1e-5)
    expected = torch.nn.utils.clip_grad_norm_(reference.parameters(), 0.3)
    torch.testing.assert_close(module.optimizer.clip_grad_norm_(0.3), expected, rtol=1e-5, atol=1e-5)
    reference_opt.step()
    module.optimizer.step()
    torch.testing.assert_close(module.weight, reference.weight.detach(), rtol=1e-6, atol=1e-6)


# -------------------------------------------------------------------------------------------------
# Bugs


def test_load_state_dict_non_strict_with_an_extra_key_still_loads_the_weight():
    """torch's Module.load_state_dict always calls _load_from_state_dict with strict=True and only
    raises afterwards when strict; so strict=False with an extra key must still copy the weight."""
    source = torch.nn.Embedding(10, 3)
    state = dict(source.state_dict())
    state["extra"] = torch.zeros(1)
    reference = torch.nn.Embedding(10, 3)
    module = ek_torch.Embedding(10, 3)
    expected = reference.load_state_dict(state, strict=False)
    result = module.load_state_dict(state, strict=False)
    assert list(result.unexpected_keys) == list(expected.unexpected_keys) == ["extra"]
    torch.testing.assert_close(reference.weight.detach(), source.weight.detach(), rtol=0, atol=0)
    torch.testing.assert_close(module.weight, source.weight.detach(), rtol=0, atol=0)  # fails: unchanged


def test_load_state_dict_non_strict_inside_a_sequential_with_an_extra_key():
    source = torch.nn.Sequential(torch.nn.Embedding(10, 3), torch.nn.Linear(3, 2))
    state = dict(source.state_dict())
    state["0.foo"] = torch.ones(1)
    model = torch.nn.Sequential(ek_torch.Embedding(10, 3), torch.nn.Linear(3, 2))
    result = model.load_state_dict(state, strict=False)
    assert list(result.unexpected_keys) == ["0.foo"]
    torch.testing.assert_close(model[0].weight, source[0].weight.detach(), rtol=0, atol=0)


def test_module_zero_grad_drops_the_kept_gradient_as_torchs_does():
    """model.zero_grad() is torch's other way of clearing gradients; with step_in_backward=False the
    kept gradient is the module's gradient, and a later step() must not apply a cleared batch."""
    torch.manual_seed(0)
    reference = torch.nn.Embedding(10, 2)
    reference_opt = torch.optim.SGD(reference.parameters(), lr=1.0)
    module = ek_torch.Embedding(10, 2, lr=1.0, step_in_backward=False)
    module.set_weight(reference.weight)
    for m in (reference, module):
        m(torch.tensor([1])).sum().backward()  # e.g. a probe / saliency backward
        m.zero_grad()
        m(torch.tensor([2])).sum().backward()
    reference_opt.step()
    module.optimizer.step()
    torch.testing.assert_close(module.weight, reference.weight.detach(), rtol=0, atol=1e-7)  # fails: row 1 moved


def test_assigning_weight_data_is_not_silently_lost():
    """``emb.weight.data = pretrained`` is a common torch idiom: it must reach the table or raise."""
    module = ek_torch.Embedding(4, 2)
    new = torch.ones(4, 2)
    try:
        module.weight.data = new
    except RuntimeError:
        return  # refused loudly: acceptable
    torch.testing.assert_close(module.weight, new, rtol=0, atol=0)  # fails: silently nothing


def test_assigning_a_parameter_to_weight_works_or_says_how():
    """``emb.weight = nn.Parameter(pretrained)`` works in torch; here it raises KeyError
    "attribute 'weight' already exists", which does not say how to replace the weights."""
    module = ek_torch.Embedding(4, 2)
    new = torch.nn.Parameter(torch.full((4, 2), 2.0))
    try:
        module.weight = new
    except Exception as error:  # noqa: BLE001 - any refusal, as long as it points to set_weight
        assert "set_weight" in str(error), f"{type(error).__name__}: {error}"
        return
    torch.testing.assert_close(module.weight, new.detach(), rtol=0, atol=0)


def test_tensors_computed_from_a_device_weight_copy_are_plain_and_writable():
    """Only views of the read-only copy (w[0], w.data, w.detach(), ...) should refuse in-place
    changes; new tensors computed from it are the user's (w.cpu() above all)."""
    weight = read_only_copy(torch.arange(12.0).reshape(3, 4), "t", "cuda:0")
    with pytest.raises(RuntimeError, match="set_weight"):
        weight[0].zero_()  # a view: refused (as documented)
    for make in (lambda w: w * 2, lambda w: w.double(), lambda w: w @ w.T,
                 lambda w: torch.nn.functional.normalize(w, dim=1)):
        fresh = make(weight)
        fresh.add_(1)  # fails: "add_: this weight is a copy of table 't' ..."
    torch.testing.assert_close(weight.as_subclass(torch.Tensor), torch.arange(12.0).reshape(3, 4), rtol=0, atol=0)


@pytest.mark.skipif(not hasattr(torch.optim.Optimizer, "register_state_dict_pre_hook"),
                    reason="optimizer state_dict hooks arrived in PyTorch 2.1")
def test_optimizer_state_dict_hooks_run():
    module = ek_torch.Embedding(10, 2, optimizer="adagrad")
    seen = []
    module.optimizer.register_state_dict_pre_hook(lambda optimizer: seen.append("state_dict pre"))
    module.optimizer.register_state_dict_post_hook(lambda optimizer, state: seen.append("state_dict post"))
    module.optimizer.register_load_state_dict_pre_hook(lambda optimizer, state: seen.append("load pre"))
    module.optimizer.register_load_state_dict_post_hook(lambda optimizer: seen.append("load post"))
    module.optimizer.load_state_dict(module.optimizer.state_dict())
    assert seen == ["state_dict pre", "state_dict post", "load pre", "load post"]  # fails: []


def test_negative_padding_idx_error_names_the_value_given():
    with pytest.raises(ValueError, match="-11"):  # today: "... got -1" (after adding num_embeddings)
        ek_torch.Embedding(10, 2, padding_idx=-11)


def test_offsets_beyond_the_input_are_named_as_given():
    """offsets=[0, 5] for 3 ids: torch says offsets[-1] can not be greater than input's length;
    embedkit blames offsets[2], an entry the user never passed (the end it appended)."""
    module = ek_torch.EmbeddingBag(10, 2, mode="sum")
    with pytest.raises(ValueError) as refused:
        module(torch.tensor([1, 2, 3]), torch.tensor([0, 5]))
    assert "offsets[2]" not in str(refused.value), str(refused.value)
