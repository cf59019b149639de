"""``module.optimizer`` is a ``torch.optim.Optimizer`` (issue #25 item 4): schedulers reach the
table's learning rate, hooks see every step, its state_dict carries the optimizer state and step,
and with ``step_in_backward=False`` gradients accumulate until ``step()``, clipped by their true norm.
Checked against torch's own modules and optimizers."""
import copy
import pickle
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import embedkit  # noqa: E402
import embedkit.torch as ek_torch  # noqa: E402


def batches(count, rows=30, shape=(4, 5), seed=0):
    rng = np.random.default_rng(seed)
    return [torch.from_numpy(rng.integers(0, rows, size=shape)) for _ in range(count)]


def test_optimizer_is_a_torch_optimizer_with_one_group_per_table():
    module = ek_torch.Embedding(30, 4, optimizer="adagrad", lr=0.2)
    assert isinstance(module.optimizer, torch.optim.Optimizer)
    assert len(module.optimizer.param_groups) == 1
    assert module.optimizer.param_groups[0]["lr"] == pytest.approx(0.2)
    assert module.optimizer.param_groups[0]["params"] == [module.anchor]
    assert "FusedOptimizer(tables=['embedding']" in repr(module.optimizer)


@pytest.mark.parametrize("scheduler", ["step", "lambda"])
def test_schedulers_reach_the_table_learning_rate_without_warnings(scheduler):
    torch.manual_seed(3)
    reference = torch.nn.Embedding(30, 4, sparse=True)
    reference_opt = torch.optim.SGD(reference.parameters(), lr=0.5)
    module = ek_torch.Embedding(30, 4, optimizer="sgd", lr=0.5)
    module.set_weight(reference.weight)

    def make(optimizer):
        if scheduler == "step":
            return torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0 / (1 + epoch))

    reference_sched, sched = make(reference_opt), make(module.optimizer)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warns when a scheduler steps before its optimizer
        for ids in batches(4):
            used = module.optimizer.param_groups[0]["lr"]
            reference_opt.zero_grad()
            reference(ids).pow(2).sum().backward()
            reference_opt.step()
            reference_sched.step()
            module.optimizer.zero_grad()
            module(ids).pow(2).sum().backward()
            module.optimizer.step()  # a training loop's own call: nothing more happens
            sched.step()
    torch.testing.assert_close(module.weight, reference.weight.detach(), rtol=1e-6, atol=1e-6)
    assert module.optimizer.param_groups[0]["lr"] == pytest.approx(reference_opt.param_groups[0]["lr"])
    assert module.table.learning_rate == pytest.approx(used)  # the rate the last step ran at
    assert module.table.step == 4  # the loop's own step() calls added none


def test_each_backward_is_a_step_hooks_see():
    module = ek_torch.EmbeddingBag(30, 4, mode="sum")
    if not hasattr(module.optimizer, "register_step_post_hook"):
        pytest.skip("step hooks arrived in PyTorch 2.0")
    seen = []
    module.optimizer.register_step_post_hook(lambda optimizer, args, kwargs: seen.append(module.table.step))
    for ids in batches(3, shape=(2, 3)):
        module(ids).sum().backward()
    assert seen == [1, 2, 3]


def test_optimizer_state_dict_round_trips_the_state_and_step():
    ids = batches(3)
    module = ek_torch.Embedding(30, 4, optimizer="adam", lr=0.05, seed=1)
    for batch in ids[:2]:
        module(batch).pow(2).sum().backward()
    state = module.optimizer.state_dict()
    assert set(state["state"][0]) == {"step", "momentum", "velocity"}
    assert float(state["state"][0]["step"]) == 2
    torch.testing.assert_close(state["state"][0]["velocity"], torch.from_numpy(module.table.optimizer_state("velocity")))
    assert state["param_groups"][0]["params"] == [0]

    other = ek_torch.Embedding(30, 4, optimizer="adam", lr=0.9, seed=7)
    other.load_state_dict(module.state_dict())
    other.optimizer.load_state_dict(state)
    assert other.table.step == 2 and other.optimizer.param_groups[0]["lr"] == pytest.approx(0.05)
    module(ids[2]).pow(2).sum().backward()
    other(ids[2]).pow(2).sum().backward()
    torch.testing.assert_close(other.weight, module.weight, rtol=0, atol=0)  # the same state: the same step

    # Through torch.save, as a checkpoint of model + optimizer would go.
    import io
    buffer = io.BytesIO()
    torch.save({"model": module.state_dict(), "optimizer": module.optimizer.state_dict()}, buffer)
    buffer.seek(0)
    # weights_only (plain tensors and numbers) where PyTorch's safe unpickler takes floats (2.0 on).
    loaded = torch.load(buffer, weights_only=True) if int(torch.__version__.split(".")[0]) >= 2 else torch.load(buffer)
    third = ek_torch.Embedding(30, 4, optimizer="adam", lr=0.05)
    third.load_state_dict(loaded["model"])
    third.optimizer.load_state_dict(loaded["optimizer"])
    assert third.table.step == 3
    np.testing.assert_array_equal(third.table.optimizer_state("momentum"), module.table.optimizer_state("momentum"))


def test_bad_optimizer_state_dicts_change_nothing():
    module = ek_torch.Embedding(30, 4, optimizer="adagrad")
    module(batches(1)[0]).sum().backward()
    good = module.optimizer.state_dict()
    before = module.table.optimizer_state("accumulator").copy()
    wrong_shape = copy.deepcopy(good)
    wrong_shape["state"][0]["accumulator"] = torch.zeros(31, 4)
    with pytest.raises(ValueError, match=r"optimizer state 'accumulator' has shape \(30, 4\), got shape \(31, 4\)"):
        module.optimizer.load_state_dict(wrong_shape)
    missing = copy.deepcopy(good)
    del missing["state"][0]["accumulator"]
    with pytest.raises(ValueError, match="holds no 'accumulator' for table 'embedding'"):
        module.optimizer.load_state_dict(missing)
    foreign = copy.deepcopy(good)
    foreign["state"][0]["momentum_buffer"] = torch.zeros(30, 4)
    with pytest.raises(ValueError, match="has no optimizer state 'momentum_buffer'"):
        module.optimizer.load_state_dict(foreign)
    with pytest.raises(ValueError, match="has 2 parameter groups; this optimizer has 1"):
        module.optimizer.load_state_dict({"state": {}, "param_groups": [{}, {}]})
    np.testing.assert_array_equal(module.table.optimizer_state("accumulator"), before)
    assert module.table.step == 1


@pytest.mark.parametrize("kind", ["plain", "pooled"])
def test_accumulated_batches_are_one_step_of_their_union(kind):
    ids = batches(3, seed=4)
    config = dict(optimizer="adagrad", lr=0.3, seed=5)
    if kind == "plain":
        accumulating = ek_torch.Embedding(30, 4, step_in_backward=False, **config)
        together = ek_torch.Embedding(30, 4, **config)
        for batch in ids:
            accumulating(batch).pow(2).sum().backward()
        assert accumulating.table.step == 0  # nothing applied until step()
        together(torch.cat(ids)).pow(2).sum().backward()
    else:
        accumulating = ek_torch.EmbeddingBag(30, 4, mode="mean", step_in_backward=False, **config)
        together = ek_torch.EmbeddingBag(30, 4, mode="mean", **config)
        for batch in ids:
            accumulating(batch).pow(2).sum().backward()
        together(torch.cat(ids)).pow(2).sum().backward()  # fixed-size bags: the same bags end to end
    accumulating.optimizer.step()
    assert accumulating.table.step == together.table.step == 1
    torch.testing.assert_close(accumulating.weight, together.weight, rtol=0, atol=0)
    accumulating.optimizer.step()  # nothing pending
    assert accumulating.table.step == 1


def test_accumulation_survives_a_refilled_ids_tensor_and_zero_grad_drops_it():
    module = ek_torch.Embedding(30, 4, step_in_backward=False, optimizer="sgd", lr=1.0)
    before = module.weight.clone()
    ids = torch.tensor([1, 2])
    module(ids).sum().backward()
    ids.fill_(3)  # the caller reuses its buffer
    module.optimizer.step()
    torch.testing.assert_close(module.weight[1], before[1] - 1.0, rtol=0, atol=0)
    torch.testing.assert_close(module.weight[3], before[3], rtol=0, atol=0)
    module(ids).sum().backward()
    module.optimizer.zero_grad()
    module.optimizer.step()
    assert module.table.step == 1


def test_clip_grad_norm_clips_by_the_true_norm_as_torch_does():
    torch.manual_seed(2)
    reference = torch.nn.Embedding(30, 4)
    reference_opt = torch.optim.SGD(reference.parameters(), lr=0.1)
    module = ek_torch.Embedding(30, 4, optimizer="sgd", lr=0.1, step_in_backward=False)
    module.set_weight(reference.weight)
    for step in range(3):
        for batch in batches(2, seed=10 + step):  # two accumulated micro-batches, hot rows repeated
            (reference(batch) * 3).pow(2).sum().backward()
            (module(batch) * 3).pow(2).sum().backward()
        expected = torch.nn.utils.clip_grad_norm_(reference.parameters(), max_norm=1.0)
        total = module.optimizer.clip_grad_norm_(1.0)
        torch.testing.assert_close(total, expected, rtol=1e-5, atol=1e-5)
        reference_opt.step()
        reference_opt.zero_grad()
        module.optimizer.step()
    torch.testing.assert_close(module.weight, reference.weight.detach(), rtol=1e-5, atol=1e-6)


def test_norm_needs_kept_gradients():
    module = ek_torch.Embedding(30, 4)
    module(batches(1)[0]).sum().backward()
    with pytest.raises(RuntimeError, match="needs step_in_backward=False.*clip_grad_norm_ sees 0.0"):
        module.optimizer.sparse_grad_norm()
    # What torch's clip_grad_norm_ sees on the fused path: the anchor has no gradient.
    assert float(torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)) == 0.0


def test_keras_optimizer_objects_are_refused():
    class Adam:  # what a Keras optimizer object looks like to embedkit
        def get_config(self):
            return {"learning_rate": 0.001}

    with pytest.raises(TypeError, match=r"take an optimizer name .* or a dict, got a .*Adam object; Keras optimizer"):
        ek_torch.Embedding(10, 4, optimizer=Adam())
    with pytest.raises(TypeError, match="Keras optimizer objects keep Keras's semantics"):
        ek_torch.EmbeddingBag(10, 4, optimizer=Adam())


@pytest.mark.parametrize("copy_kind", ["pickle", "deepcopy"])
def test_copies_keep_the_optimizer_bound_to_their_own_table(copy_kind):
    module = ek_torch.Embedding(30, 4, optimizer="adagrad")
    module(batches(1)[0]).sum().backward()
    clone = pickle.loads(pickle.dumps(module)) if copy_kind == "pickle" else copy.deepcopy(module)
    assert clone.optimizer._tables[0] is clone.table and clone.optimizer.param_groups[0]["params"][0] is clone.anchor
    clone(batches(1)[0]).sum().backward()
    assert clone.table.step == 2 and module.table.step == 1


def test_model_zero_grad_drops_the_batches_kept_before_it():
    """model.zero_grad() reaches the module's anchor only (not the module's own zero_grad): its
    gradient marker, cleared to None, tells the optimizer the batches before it are dropped."""
    model = torch.nn.Sequential(ek_torch.Embedding(10, 2, optimizer="sgd", lr=1.0, step_in_backward=False))
    before = model[0].weight.clone()
    model(torch.tensor([1])).sum().backward()
    model.zero_grad(set_to_none=True)
    model(torch.tensor([2])).sum().backward()
    model[0].optimizer.step()
    torch.testing.assert_close(model[0].weight[1], before[1], rtol=0, atol=0)
    torch.testing.assert_close(model[0].weight[2], before[2] - 1.0, rtol=0, atol=0)
    model(torch.tensor([3])).sum().backward()
    model.zero_grad(set_to_none=True)
    model[0].optimizer.step()  # cleared after the last backward: nothing applied
    torch.testing.assert_close(model[0].weight[3], before[3], rtol=0, atol=0)
    assert model[0].table.step == 1
