"""embedkit.Embedding on its own: lookups, pooling, masks, training, weights, summary, placement,
checkpoints, against plain NumPy references written here."""
import json

import numpy as np
import pytest

import embedkit


def table(input_dim=20, output_dim=4, **options):
    layer = embedkit.Embedding(input_dim, output_dim, placement="cpu", **options)
    rng = np.random.default_rng(input_dim * 31 + output_dim)
    layer.set_weights([rng.standard_normal((input_dim, output_dim)).astype(np.float32)])
    return layer


def test_keras_defaults():
    layer = embedkit.Embedding(10, 3)
    config = layer.get_config()
    assert config["embeddings_initializer"]["class_name"] == "RandomUniform"
    assert config["embeddings_initializer"]["config"]["minval"] == -0.05
    assert config["embeddings_initializer"]["config"]["maxval"] == 0.05
    assert config["mask_zero"] is False and config["name"] == "embedding" and config["trainable"] is True
    assert layer.compute_mask(np.array([0, 1])) is None
    assert (layer.input_dim, layer.output_dim) == (10, 3)
    assert layer.step == 0
    assert embedkit.__version__.count(".") == 2


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_lookup_equals_indexing(dtype):
    layer = table()
    weights = layer.embeddings
    ids = np.random.default_rng(1).integers(0, 20, size=(3, 5, 2)).astype(dtype)
    ids[0, 0, 0] = ids[2, 4, 1] = 19  # duplicates and the last row
    np.testing.assert_array_equal(layer(ids), weights[ids])
    assert layer(ids).dtype == np.float32
    np.testing.assert_array_equal(layer([[1, 2], [3, 4]]), weights[[[1, 2], [3, 4]]])  # nested lists
    assert layer(np.zeros((0, 3), dtype=dtype)).shape == (0, 3, 4)  # an empty batch



def test_results_own_library_memory_that_is_reused_once_freed():
    """Without out=, results come from embedkit's output cache: writable NumPy arrays that outlive
    their table; a large one freed backs the next result of its size, rewritten whole."""
    embedkit.set_output_cache_capacity(1 << 30)
    layer = table(1000, 64)
    ids = np.arange(8192) % 1000  # 2 MiB of output
    first = layer(ids)
    assert first.flags.writeable and first.flags.c_contiguous and first.flags.owndata is False
    address = first.__array_interface__["data"][0]
    first[:] = np.nan
    del first
    second = layer(ids)
    assert second.__array_interface__["data"][0] == address
    np.testing.assert_array_equal(second, layer.embeddings[ids])
    offsets = np.arange(0, 8193, 2)  # 4096 bags of 2: 1 MiB
    pooled = layer.pooled(ids, offsets, "max")
    address = pooled.__array_interface__["data"][0]
    pooled[:] = np.nan
    del pooled
    again = layer.pooled(ids, offsets, "max")
    assert again.__array_interface__["data"][0] == address
    np.testing.assert_array_equal(again, np.maximum(layer.embeddings[ids[0::2]], layer.embeddings[ids[1::2]]))
    del layer
    np.testing.assert_array_equal(second[:2], second[1000:1002])  # alive after its table is gone


def test_a_failed_lookup_allocates_nothing_and_names_the_id():
    layer = table(10, 4)
    with pytest.raises(embedkit.OutOfRangeError, match=r"indices\[1\] = 10 is not in \[0, 10\)"):
        layer(np.array([1, 10]))
    with pytest.raises(embedkit.InvalidArgumentError, match="offsets"):
        layer.pooled(np.array([1, 2]), np.array([0, 3]), "sum")

def test_padding_idx_reads_zeros_and_is_never_trained():
    layer = table(padding_idx=2, optimizer={"class_name": "SGD", "config": {"learning_rate": 1.0}})
    before = layer.embeddings
    np.testing.assert_array_equal(layer(np.array([2, 3])), np.stack([np.zeros(4), before[3]]))
    layer.train_step(np.array([2, 3]), np.ones((2, 4), np.float32))
    after = layer.embeddings
    np.testing.assert_array_equal(after[2], before[2])
    np.testing.assert_allclose(after[3], before[3] - 1.0, rtol=1e-6)


def test_mask_zero():
    layer = table(mask_zero=True)
    ids = np.array([[3, 0, 0], [0, 5, 1]])
    np.testing.assert_array_equal(layer.compute_mask(ids), ids != 0)
    out = np.ones((2, 3), dtype=np.bool_)
    assert layer.compute_mask(ids, out=out) is out
    np.testing.assert_array_equal(out, ids != 0)


def pooled_reference(weights, ids, offsets, mode, sample_weights=None):
    bags = []
    for b in range(len(offsets) - 1):
        rows = weights[ids[offsets[b]:offsets[b + 1]]].astype(np.float64)
        w = np.ones(len(rows)) if sample_weights is None else sample_weights[offsets[b]:offsets[b + 1]]
        if len(rows) == 0:
            bags.append(np.zeros(weights.shape[1]))
        elif mode == "sum":
            bags.append((rows * w[:, None]).sum(0))
        elif mode == "mean":
            bags.append((rows * w[:, None]).sum(0) / w.sum())
        elif mode == "sqrtn":
            bags.append((rows * w[:, None]).sum(0) / np.sqrt((w ** 2).sum()))
        else:
            bags.append(rows.max(0))
    return np.array(bags, dtype=np.float32)


@pytest.mark.parametrize("mode", ["sum", "mean", "max", "sqrtn"])
def test_pooled_equals_reference(mode):
    layer = table()
    ids = np.array([4, 8, 15, 16, 4, 4, 19, 0])
    offsets = np.array([0, 2, 2, 7, 8])  # an empty bag, a bag of duplicates
    expected = pooled_reference(layer.embeddings, ids, offsets, mode)
    np.testing.assert_allclose(layer.pooled(ids, offsets, mode), expected, rtol=1e-6, atol=1e-6)
    if mode != "max":
        w = np.linspace(0.5, 2.0, len(ids)).astype(np.float32)
        np.testing.assert_allclose(layer.pooled(ids, offsets, mode, w), pooled_reference(layer.embeddings, ids, offsets, mode, w),
                                   rtol=1e-6, atol=1e-6)


def test_train_step_folds_duplicates_and_touches_only_the_batch():
    layer = table(optimizer={"class_name": "SGD", "config": {"learning_rate": 0.5}})
    before = layer.embeddings
    ids = np.array([[3, 7], [3, 3]])
    grad = np.random.default_rng(2).standard_normal((2, 2, 4)).astype(np.float32)
    layer.train_step(ids, grad)
    expected = before.copy()
    np.add.at(expected, ids.ravel(), -0.5 * grad.reshape(-1, 4))
    np.testing.assert_allclose(layer.embeddings, expected, rtol=1e-6, atol=1e-6)
    assert layer.step == 1


def test_train_step_pooled_sum_is_the_lookup_gradient():
    layer = table(optimizer={"class_name": "SGD", "config": {"learning_rate": 0.25}})
    before = layer.embeddings
    ids, offsets = np.array([1, 2, 2, 5]), np.array([0, 3, 4])
    grad = np.array([[1, 2, 3, 4], [-1, 0, 1, 0]], np.float32)
    layer.train_step_pooled(ids, offsets, grad, "sum")
    expected = before.copy()
    for b in range(2):
        for i in ids[offsets[b]:offsets[b + 1]]:
            expected[i] -= 0.25 * grad[b]
    np.testing.assert_allclose(layer.embeddings, expected, rtol=1e-6)


def test_learning_rate_can_be_scheduled():
    layer = table(optimizer="sgd")
    assert layer.learning_rate == pytest.approx(0.01)
    layer.learning_rate = 0.125
    assert layer.learning_rate == 0.125


def test_weights_are_copies_and_set_weights_takes_keras_lists():
    layer = table()
    copy = layer.weights[0]
    copy[:] = 7
    assert not np.any(layer.embeddings == 7)
    new = np.arange(80, dtype=np.float32).reshape(20, 4)
    layer.set_weights([new])
    np.testing.assert_array_equal(layer.get_weights()[0], new)
    layer.set_weights(new * 2)
    np.testing.assert_array_equal(layer.embeddings, new * 2)


def test_summary_is_the_c_library_text():
    layer = embedkit.Embedding(1000, 8, mask_zero=True, name="words", placement="cpu")
    text = layer.summary()
    assert text.startswith("Table 'words'\n")
    assert "  rows x dim      1,000 x 8 (8,000 parameters, trainable)\n" in text
    assert "  weights         31.25 KiB (32,000 bytes)\n" in text
    batch = layer.summary(np.array([[5, 0], [0, 0]]))
    assert "  output          (2, 2, 8) float32 = 128 bytes\n" in batch
    assert "3 of 4 ids are 0 (masked by mask_zero): 1 effective (25.0%)" in batch


def test_placement_dict():
    placement = embedkit.Embedding(100, 16, placement="cpu").placement
    assert placement["device"] == "cpu"
    assert placement["reason_code"] == "cpu_requested"
    assert isinstance(placement["reason"], str) and placement["reason"]
    assert placement["bytes"]["weights"] == 100 * 16 * 4
    assert placement["bytes"]["total"] == sum(placement["bytes"][k] for k in ("weights", "optimizer_state", "workspace"))


def test_save_and_load_continue_training_identically(tmp_path):
    layer = table(optimizer={"class_name": "Adagrad", "config": {"learning_rate": 0.1}}, name="items")
    ids, grad = np.array([1, 5, 5]), np.ones((3, 4), np.float32)
    layer.train_step(ids, grad)
    layer.save(tmp_path / "ckpt")
    restored = embedkit.Embedding.load(tmp_path / "ckpt")
    assert restored.name == "items" and restored.step == 1
    np.testing.assert_array_equal(restored.embeddings, layer.embeddings)
    layer.train_step(ids, grad)
    restored.train_step(ids, grad)
    np.testing.assert_array_equal(restored.embeddings, layer.embeddings)  # the Adagrad state came back
    manifest = json.loads((tmp_path / "ckpt" / "manifest.json").read_text())
    assert manifest["step"] == 1


def test_config_round_trips_through_from_config():
    layer = embedkit.Embedding(50, 6, "normal", mask_zero=True, seed=7, optimizer="adam", name="t")
    config = layer.get_config()
    again = embedkit.Embedding.from_config(config)
    assert again.get_config() == config
    np.testing.assert_array_equal(again.embeddings, layer.embeddings)  # same seed, same matrix


def test_pickle_and_deepcopy_keep_weights_optimizer_state_and_step():
    import copy
    import pickle

    layer = table(optimizer={"class_name": "Adagrad", "config": {"learning_rate": 0.5}})
    ids, grad = np.array([1, 4, 4]), np.ones((3, 4), np.float32)
    layer.train_step(ids, grad)
    for clone in (pickle.loads(pickle.dumps(layer)), copy.deepcopy(layer)):
        assert clone.step == 1
        np.testing.assert_array_equal(clone.embeddings, layer.embeddings)
        assert clone.get_config() == layer.get_config()
        clone.train_step(ids, grad)
        assert layer.step == 1  # independent tables
    layer.train_step(ids, grad)
    np.testing.assert_array_equal(clone.embeddings, layer.embeddings)  # the same accumulator


@pytest.mark.parametrize(
    "dtype, stored",
    [
        ("float16", "float16"),
        ("bfloat16", "bfloat16"),
        ("mixed_bfloat16", "float32"),  # a mixed policy keeps float32 variables
        ({"module": "keras", "class_name": "DTypePolicy", "config": {"name": "bfloat16"}}, "bfloat16"),
    ],
)
def test_dtype_stores_the_rows_narrower(dtype, stored):
    """Keras's dtype names and policies: float16 and bfloat16 rows, read back as float32 values of
    that type; set_weights rounds to nearest even (checked for float16 against NumPy's own rounding)."""
    layer = embedkit.Embedding(30, 6, dtype=dtype, seed=1)
    assert layer.get_config()["dtype"] == stored
    weights = layer.get_weights()[0]
    assert weights.dtype == np.float32
    if stored == "bfloat16":
        assert not np.any(weights.view(np.uint32) & 0xFFFF)
    values = np.random.default_rng(2).standard_normal((30, 6)).astype(np.float32) * 1000
    layer.set_weights([values])
    if stored == "float16":
        np.testing.assert_array_equal(layer.get_weights()[0], values.astype(np.float16).astype(np.float32))
    if stored == "bfloat16":
        got = layer.get_weights()[0]
        assert not np.any(got.view(np.uint32) & 0xFFFF)
        assert np.all(np.abs(got - values) <= np.abs(values) * 2.0**-8)
    layer.train_step(np.array([1, 1, 4]), np.ones((3, 6), np.float32))
    assert layer.step == 1


def test_rounding_option_and_bad_dtypes():
    assert embedkit.Embedding(4, 2, dtype="bfloat16", rounding="nearest").get_config()["rounding"] == "nearest"
    with pytest.raises(NotImplementedError, match="dtype 'float64' is not supported"):
        embedkit.Embedding(4, 2, dtype="float64")
    with pytest.raises(ValueError, match="rounding must be 'stochastic' or 'nearest'"):
        embedkit.Embedding(4, 2, rounding="up")
