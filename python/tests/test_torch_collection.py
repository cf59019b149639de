"""embedkit.torch.EmbeddingBagCollection / EmbeddingCollection: against a reference written here,
and (where torchrec is installed: python/requirements-test-torchrec.txt) against TorchRec's own
collections, FBGEMM's EXACT_ROWWISE_ADAGRAD and TorchRec's DLRM."""
import pytest

torch = pytest.importorskip("torch")

import embedkit  # noqa: E402
import embedkit.torch as et  # noqa: E402
from embedkit._torchrec_types import HAVE_TORCHREC  # noqa: E402

needs_torchrec = pytest.mark.skipif(not HAVE_TORCHREC, reason="torchrec is not installed")


def _configs(pooling_mean=et.PoolingType.MEAN):
    return [
        et.EmbeddingBagConfig(num_embeddings=50, embedding_dim=8, name="user", feature_names=["user_a", "user_b"]),
        et.EmbeddingBagConfig(num_embeddings=300, embedding_dim=4, name="item", feature_names=["item"],
                              pooling=pooling_mean),
    ]


def _batch(keys, rows, batch, max_bag, seed, weighted=False):
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(0, max_bag + 1, (len(keys) * batch,), generator=gen)
    values = []
    for k in range(len(keys)):
        count = int(lengths[k * batch:(k + 1) * batch].sum())
        values.append(torch.randint(0, rows[k], (count,), generator=gen))
    values = torch.cat(values)
    weights = torch.rand(values.shape[0], generator=gen) + 0.5 if weighted else None
    return et.KeyedJaggedTensor(keys=keys, values=values, lengths=lengths, weights=weights)


def _reference(module, kjt):
    """Each feature's bags pooled from the tables' weights, in config order."""
    state = module.state_dict()
    keys, lengths = kjt.keys(), kjt.lengths()
    batch = lengths.numel() // len(keys)
    starts = torch.cat([torch.zeros(1, dtype=torch.int64), torch.cumsum(lengths, 0)])
    columns = []
    for config in module.embedding_bag_configs():
        weight = state[f"embedding_bags.{config.name}.weight"].clone()
        for feature in config.feature_names:
            k = keys.index(feature)
            block = torch.zeros(batch, config.embedding_dim)
            for b in range(batch):
                begin, end = int(starts[k * batch + b]), int(starts[k * batch + b + 1])
                if end > begin:
                    rows = weight[kjt.values()[begin:end]]
                    if kjt.weights_or_none() is not None:
                        rows = rows * kjt.weights_or_none()[begin:end, None]
                    block[b] = rows.sum(0) / ((end - begin) if config.pooling == et.PoolingType.MEAN else 1)
            columns.append(block)
    return torch.cat(columns, dim=1)


def test_pooled_forward_matches_the_reference_in_config_order():
    module = et.EmbeddingBagCollection(_configs())
    kjt = _batch(["item", "extra", "user_b", "user_a"], [300, 7, 50, 50], 9, 4, 1)
    out = module(kjt)
    assert out.keys() == ["user_a", "user_b", "item"]
    assert out.values().shape == (9, 20)
    torch.testing.assert_close(out.values(), _reference(module, kjt), rtol=1e-6, atol=1e-6)
    assert list(module.state_dict()) == ["embedding_bags.user.weight", "embedding_bags.item.weight"]


def test_weighted_forward_and_sgd_step():
    configs = _configs(et.PoolingType.SUM)
    module = et.EmbeddingBagCollection(configs, is_weighted=True, optimizer="sgd", lr=0.5)
    kjt = _batch(["user_a", "user_b", "item"], [50, 50, 300], 6, 3, 2, weighted=True)
    before = {k: v.clone() for k, v in module.state_dict().items()}
    out = module(kjt)
    torch.testing.assert_close(out.values(), _reference(module, kjt), rtol=1e-6, atol=1e-6)
    (out.values() * 2.0).sum().backward()
    # Reference SGD: each id gets 2·weight per occurrence, times lr.
    starts = torch.cat([torch.zeros(1, dtype=torch.int64), torch.cumsum(kjt.lengths(), 0)])
    expected = {k: v.clone() for k, v in before.items()}
    for k, key in enumerate(kjt.keys()):
        name = "user" if key.startswith("user") else "item"
        ids = kjt.values()[int(starts[k * 6]):int(starts[(k + 1) * 6])]
        weights = kjt.weights()[int(starts[k * 6]):int(starts[(k + 1) * 6])] if hasattr(kjt, "weights") else \
            kjt.weights_or_none()[int(starts[k * 6]):int(starts[(k + 1) * 6])]
        for i, w in zip(ids.tolist(), weights.tolist()):
            expected[f"embedding_bags.{name}.weight"][i] -= 0.5 * 2.0 * w
    for key, value in module.state_dict().items():
        torch.testing.assert_close(value, expected[key], rtol=1e-5, atol=1e-5)


def test_bad_id_names_the_feature_and_changes_no_table():
    module = et.EmbeddingBagCollection(_configs(), lr=0.1)
    kjt = et.KeyedJaggedTensor(keys=["user_a", "user_b", "item"], values=torch.tensor([1, 2, 3, 300]),
                               lengths=torch.tensor([1, 1, 2]))
    before = {k: v.clone() for k, v in module.state_dict().items()}
    with pytest.raises(embedkit.OutOfRangeError, match=r"feature 'item' sample 0: indices\[1\] = 300 is not in \[0, 300\)"):
        module(kjt)
    for key, value in module.state_dict().items():
        assert torch.equal(value, before[key])


def test_state_dict_round_trip_strict_and_mismatches():
    a, b = et.EmbeddingBagCollection(_configs()), et.EmbeddingBagCollection(_configs())
    b.load_state_dict(a.state_dict())
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key])
    state = a.state_dict()
    state["embedding_bags.other.weight"] = torch.zeros(1, 1)
    with pytest.raises(RuntimeError, match="Unexpected key"):
        b.load_state_dict(state)
    del state["embedding_bags.other.weight"], state["embedding_bags.item.weight"]
    with pytest.raises(RuntimeError, match="Missing key"):
        b.load_state_dict(state)


def test_embedding_collection_plain_lookup_and_step():
    configs = [et.EmbeddingConfig(num_embeddings=20, embedding_dim=4, name="t", feature_names=["f", "g"])]
    module = et.EmbeddingCollection(configs, optimizer="sgd", lr=1.0)
    kjt = et.KeyedJaggedTensor(keys=["g", "f"], values=torch.tensor([3, 4, 4, 5]), lengths=torch.tensor([2, 0, 1, 1]))
    weight = module.state_dict()["embeddings.t.weight"].clone()
    out = module(kjt)
    assert set(out) == {"g", "f"}
    torch.testing.assert_close(out["g"].values(), weight[[3, 4]])
    torch.testing.assert_close(out["f"].values(), weight[[4, 5]])
    assert out["f"].lengths().tolist() == [1, 1]
    (out["g"].values().sum() + 2 * out["f"].values().sum()).backward()
    expected = weight.clone()
    expected[3] -= 1.0
    expected[4] -= 3.0
    expected[5] -= 2.0
    torch.testing.assert_close(module.state_dict()["embeddings.t.weight"], expected)


@needs_torchrec
def test_same_outputs_and_tables_as_torchrec_after_20_sgd_steps():
    from torchrec.modules.embedding_modules import EmbeddingBagCollection as TorchRecEBC

    configs = _configs()
    theirs = TorchRecEBC(tables=configs)
    ours = et.EmbeddingBagCollection(configs, optimizer="sgd", lr=0.05)
    ours.load_state_dict(theirs.state_dict())
    sgd = torch.optim.SGD(theirs.parameters(), lr=0.05)
    for step in range(20):
        kjt = _batch(["user_a", "user_b", "item"], [50, 50, 300], 16, 5, 100 + step)
        target = torch.randn(16, 20, generator=torch.Generator().manual_seed(step))
        mine, reference = ours(kjt), theirs(kjt)
        assert mine.keys() == reference.keys()
        torch.testing.assert_close(mine.values(), reference.values(), rtol=0, atol=1e-6)
        sgd.zero_grad()
        (reference.values() * target).sum().backward()
        sgd.step()
        (mine.values() * target).sum().backward()
    for key, value in theirs.state_dict().items():
        torch.testing.assert_close(ours.state_dict()[key], value, rtol=0, atol=1e-5)
    theirs.load_state_dict(ours.state_dict())  # and back, strict


@needs_torchrec
def test_rowwise_adagrad_matches_fbgemm_exact_rowwise_adagrad():
    from fbgemm_gpu.split_embedding_configs import EmbOptimType
    from fbgemm_gpu.split_table_batched_embeddings_ops_common import EmbeddingLocation, PoolingMode
    from fbgemm_gpu.split_table_batched_embeddings_ops_training import (
        ComputeDevice,
        SplitTableBatchedEmbeddingBagsCodegen,
    )

    configs = _configs(et.PoolingType.SUM)
    eps, lr = 1e-8, 0.1
    tbe = SplitTableBatchedEmbeddingBagsCodegen(
        embedding_specs=[(50, 8, EmbeddingLocation.HOST, ComputeDevice.CPU),
                         (300, 4, EmbeddingLocation.HOST, ComputeDevice.CPU)],
        feature_table_map=[0, 0, 1], optimizer=EmbOptimType.EXACT_ROWWISE_ADAGRAD, learning_rate=lr, eps=eps,
        pooling_mode=PoolingMode.SUM)
    ours = et.EmbeddingBagCollection(configs, optimizer="rowwise_adagrad", lr=lr, eps=eps,
                                     initial_accumulator_value=0.0)
    with torch.no_grad():
        for weight, name in zip(tbe.split_embedding_weights(), ["user", "item"]):
            weight.copy_(ours.state_dict()[f"embedding_bags.{name}.weight"])
    for step in range(20):
        kjt = _batch(["user_a", "user_b", "item"], [50, 50, 300], 16, 5, 200 + step)
        target = torch.randn(16, 20, generator=torch.Generator().manual_seed(step))
        offsets = torch.cat([torch.zeros(1, dtype=torch.int64), torch.cumsum(kjt.lengths(), 0)])
        reference = tbe(kjt.values().to(torch.int64), offsets)
        mine = ours(kjt)
        torch.testing.assert_close(mine.values(), reference, rtol=0, atol=1e-6)
        (reference * target).sum().backward()
        (mine.values() * target).sum().backward()
    for weight, name in zip(tbe.split_embedding_weights(), ["user", "item"]):
        torch.testing.assert_close(ours.state_dict()[f"embedding_bags.{name}.weight"], weight.detach(), rtol=0,
                                   atol=1e-5)


@needs_torchrec
def test_torchrec_dlrm_trains_unchanged_on_embedkits_collection():
    from torchrec.models.dlrm import DLRM
    from torchrec.modules.embedding_modules import EmbeddingBagCollection as TorchRecEBC

    configs = [et.EmbeddingBagConfig(num_embeddings=rows, embedding_dim=8, name=f"t{i}", feature_names=[f"f{i}"])
               for i, rows in enumerate([100, 7, 1000])]
    torch.manual_seed(0)
    theirs = DLRM(embedding_bag_collection=TorchRecEBC(tables=configs), dense_in_features=5,
                  dense_arch_layer_sizes=[16, 8], over_arch_layer_sizes=[16, 1])
    ours = DLRM(embedding_bag_collection=et.EmbeddingBagCollection(configs, lr=0.05), dense_in_features=5,
                dense_arch_layer_sizes=[16, 8], over_arch_layer_sizes=[16, 1])
    ours.load_state_dict(theirs.state_dict())  # TorchRec's keys, strict
    their_sgd = torch.optim.SGD(theirs.parameters(), lr=0.05)
    our_sgd = torch.optim.SGD(ours.parameters(), lr=0.05)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    for step in range(10):
        gen = torch.Generator().manual_seed(step)
        dense = torch.randn(32, 5, generator=gen)
        labels = torch.randint(0, 2, (32, 1), generator=gen).float()
        kjt = _batch(["f0", "f1", "f2"], [100, 7, 1000], 32, 1, 300 + step)
        losses = []
        for model, sgd in ((theirs, their_sgd), (ours, our_sgd)):
            sgd.zero_grad()
            loss = loss_fn(model(dense, kjt), labels)
            loss.backward()
            sgd.step()
            losses.append(loss.item())
        assert abs(losses[0] - losses[1]) < 1e-5, (step, losses)
    for key, value in theirs.state_dict().items():
        torch.testing.assert_close(ours.state_dict()[key], value, rtol=0, atol=1e-5)


_WITHOUT_TORCHREC = r"""
import sys
sys.modules["torchrec"] = None  # as if it were not installed
import torch
import embedkit.torch as et
from embedkit._torchrec_types import HAVE_TORCHREC
assert not HAVE_TORCHREC
configs = [et.EmbeddingBagConfig(num_embeddings=10, embedding_dim=3, name="t", feature_names=["a", "b"],
                                 weight_init_min=0.5, weight_init_max=0.5)]
module = et.EmbeddingBagCollection(configs, lr=1.0)
kjt = et.KeyedJaggedTensor.from_lengths_sync(keys=["b", "a"], values=torch.tensor([1, 2, 2]),
                                             lengths=torch.tensor([2, 1]))
out = module(kjt)
assert out.keys() == ["a", "b"] and out.length_per_key() == [3, 3]
assert torch.equal(out.to_dict()["a"], torch.full((1, 3), 0.5)) and torch.equal(out["b"], torch.full((1, 3), 1.0))
out.values().sum().backward()
weight = module.state_dict()["embedding_bags.t.weight"]
assert torch.equal(weight[2], torch.full((3,), -1.5)) and torch.equal(weight[1], torch.full((3,), -0.5))
jagged = et.EmbeddingCollection([et.EmbeddingConfig(num_embeddings=4, embedding_dim=2, name="e", feature_names=["x"],
                                                    init_fn=torch.nn.init.ones_)])(
    et.KeyedJaggedTensor(keys=["x"], values=torch.tensor([3]), offsets=torch.tensor([0, 0, 1])))
assert torch.equal(jagged["x"].values(), torch.ones(1, 2)) and jagged["x"].lengths().tolist() == [0, 1]
print("ok")
"""


def test_stand_in_types_without_torchrec():
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", _WITHOUT_TORCHREC], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
