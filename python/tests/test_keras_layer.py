"""embedkit.keras.Embedding in real Keras 3 models, on the backend conftest.py chose (JAX in
python/requirements-test.txt's environment, PyTorch in requirements-test-pypi-torch.txt's,
TensorFlow in requirements-test-keras-tf.txt's, scripts/test.sh keras-backends):
Sequential and functional models with fit / evaluate / predict, masks, weights, configs, saving,
and the two-tower parity with keras.layers.Embedding trained by the same Keras optimizer."""
import numpy as np
import pytest

keras = pytest.importorskip("keras")
BACKEND = keras.backend.backend()
if BACKEND not in ("jax", "torch", "tensorflow"):
    pytest.skip(f"embedkit.keras runs on the jax, torch and tensorflow backends, not {BACKEND}",
                allow_module_level=True)

import embedkit  # noqa: E402
import embedkit.keras  # noqa: E402


def sequential(layer, length=5):
    model = keras.Sequential([keras.Input((length,), dtype="int32"), layer, keras.layers.GlobalAveragePooling1D(),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    return model


def data(rows, length=5, samples=64, seed=0, low=0):
    rng = np.random.default_rng(seed)
    return (rng.integers(low, rows, size=(samples, length)).astype(np.int32),
            rng.integers(0, 2, size=(samples, 1)).astype(np.float32))


def test_sequential_fit_evaluate_predict_train_the_table():
    layer = embedkit.keras.Embedding(50, 8, optimizer="adagrad", seed=1)
    model = sequential(layer)
    x, y = data(40)  # rows 40..49 never appear: lazy Adagrad leaves them bit for bit
    before = layer.get_weights()[0]
    history = model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    after = layer.get_weights()[0]
    assert len(history.history["loss"]) == 2
    assert not np.array_equal(after[:40], before[:40])  # the table changed after fit
    np.testing.assert_array_equal(after[40:], before[40:])
    assert layer.table.step == 8  # 4 batches x 2 epochs: one step each
    model.evaluate(x, y, verbose=0)
    predictions = model.predict(x, verbose=0)
    np.testing.assert_array_equal(layer.get_weights()[0], after)  # evaluate and predict do not train
    dense = model.layers[-1].get_weights()
    expected = 1 / (1 + np.exp(-(after[x].mean(axis=1) @ dense[0] + dense[1])))
    np.testing.assert_allclose(predictions, expected, rtol=1e-5, atol=1e-6)


def test_functional_model_and_a_frozen_layer():
    ids = keras.Input((3,), dtype="int32")
    layer = embedkit.keras.Embedding(20, 4, name="words")
    out = keras.layers.Dense(1)(keras.layers.Flatten()(layer(ids)))
    model = keras.Model(ids, out)
    model.compile(optimizer="sgd", loss="mse")
    assert model.get_layer("words") is layer
    assert layer.compute_output_shape((None, 3)) == (None, 3, 4)
    x, y = data(20, length=3, samples=32)
    before = layer.get_weights()[0]
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert not np.array_equal(layer.get_weights()[0], before)
    layer.trainable = False
    model.compile(optimizer="sgd", loss="mse")
    frozen = layer.get_weights()[0]
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    np.testing.assert_array_equal(layer.get_weights()[0], frozen)


def test_masks_propagate_as_keras_embeddings_do():
    """A mask-consuming layer after the embedding: the same predictions as keras.layers.Embedding's."""
    def model_with(layer):
        ids = keras.Input((6,), dtype="int32")
        pooled = keras.layers.GlobalAveragePooling1D()(layer(ids))  # averages unmasked steps only
        return keras.Model(ids, pooled)

    ours = embedkit.keras.Embedding(30, 4, mask_zero=True, seed=3)
    theirs = keras.layers.Embedding(30, 4, mask_zero=True)
    ours_model, theirs_model = model_with(ours), model_with(theirs)
    theirs.set_weights(ours.get_weights())
    x = np.random.default_rng(4).integers(0, 30, size=(8, 6)).astype(np.int32)
    x[:, -2:] = 0  # padding
    np.testing.assert_allclose(ours_model.predict(x, verbose=0), theirs_model.predict(x, verbose=0), rtol=1e-6)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(ours.compute_mask(x)),
                                  keras.ops.convert_to_numpy(theirs.compute_mask(x)))
    assert embedkit.keras.Embedding(30, 4).compute_mask(x) is None
    eager = ours(x)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(eager._keras_mask), x != 0)


def test_weights_as_keras_reads_and_writes_them():
    layer = embedkit.keras.Embedding(6, 3)
    reference = keras.layers.Embedding(6, 3)
    reference.build()
    values = np.random.default_rng(5).standard_normal((6, 3))  # float64: cast to float32 as Keras casts
    layer.set_weights([values])
    reference.set_weights([values])
    np.testing.assert_array_equal(layer.get_weights()[0], reference.get_weights()[0])
    assert layer.get_weights()[0].dtype == np.float32
    with pytest.raises(ValueError, match=r"Layer .* weight shape \(6, 3\) is not compatible with provided weight "
                                         r"shape \(6, 4\)"):
        layer.set_weights([np.zeros((6, 4))])
    with pytest.raises(ValueError, match="expecting 1 weights"):
        layer.set_weights([values, values])
    np.testing.assert_array_equal(layer.get_weights()[0], reference.get_weights()[0])  # unchanged by refusals
    made = embedkit.keras.Embedding(6, 3, weights=[values])
    np.testing.assert_array_equal(made.get_weights()[0], values.astype(np.float32))
    table = embedkit.Embedding(6, 3, weights=[values])
    np.testing.assert_array_equal(table.embeddings, values.astype(np.float32))


def test_configs_round_trip_and_reach_keras():
    layer = embedkit.keras.Embedding(100, 8, embeddings_initializer="glorot_uniform", mask_zero=True,
                                     optimizer=keras.optimizers.Adam(0.01), placement="cpu", name="items")
    config = layer.get_config()
    assert config["optimizer"]["class_name"] == "Adam" and config["optimizer"]["config"]["lazy"] is False
    again = embedkit.keras.Embedding.from_config(config)
    assert again.get_config() == config
    np.testing.assert_array_equal(again.get_weights()[0], layer.get_weights()[0])  # the seed is in the config
    keras_layer = keras.layers.Embedding.from_config(layer.to_keras_config())
    assert keras_layer.mask_zero and keras_layer.input_dim == 100 and keras_layer.name == "items"
    table_config = embedkit.Embedding(100, 8, optimizer="adam").to_keras_config()
    assert keras.layers.Embedding.from_config(table_config).output_dim == 8
    with pytest.raises((TypeError, ValueError), match="Unrecognized keyword arguments"):
        keras.layers.Embedding.from_config(embedkit.Embedding(100, 8).get_config())  # why to_keras_config exists


def test_a_keras_tensor_given_to_the_table_points_to_the_layer():
    with pytest.raises(TypeError, match="use embedkit.keras.Embedding"):
        embedkit.Embedding(10, 4)(keras.Input((3,), dtype="int32"))


def test_model_save_and_load_keep_weights_optimizer_state_and_predictions(tmp_path):
    layer = embedkit.keras.Embedding(40, 6, optimizer=keras.optimizers.Adam(0.01), seed=2)
    model = sequential(layer)
    x, y = data(40)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    twin = loaded.layers[0]
    assert isinstance(twin, embedkit.keras.Embedding)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert twin.table.step == layer.table.step
    for name in layer.table.optimizer_state_names():
        np.testing.assert_array_equal(twin.table.optimizer_state(name), layer.table.optimizer_state(name))
    # Training on from the reloaded model is training on from the original.
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    loaded.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    np.testing.assert_allclose(twin.get_weights()[0], layer.get_weights()[0], rtol=1e-6, atol=1e-7)


def test_loading_a_mismatched_store_changes_nothing():
    """load_own_variables checks the whole store first: another optimizer's state or another shape
    raises ValueError naming it, and the table keeps its weights, state and step."""
    adam = embedkit.keras.Embedding(10, 3, optimizer="adam")
    adam.build()
    store = {}
    adam.save_own_variables(store)
    assert sorted(store) == ["0", "embedkit_state_momentum", "embedkit_state_velocity", "embedkit_step"]
    adagrad = embedkit.keras.Embedding(10, 3, optimizer="adagrad", seed=9)
    adagrad.build()
    before = adagrad.get_weights()[0]
    with pytest.raises(ValueError, match=r"holds \['momentum', 'velocity'\], but this layer's optimizer keeps "
                                         r"\['accumulator'\]"):
        adagrad.load_own_variables(store)
    wrong = dict(store, **{"0": np.zeros((10, 4), np.float32)})
    with pytest.raises(ValueError, match=r"weight shape \(10, 3\) is not compatible"):
        adam.load_own_variables(wrong)
    wrong = dict(store, embedkit_state_velocity=np.zeros((10, 4), np.float32))
    with pytest.raises(ValueError, match="the saved optimizer state 'velocity' has shape"):
        adam.load_own_variables(wrong)
    adam_before = adam.get_weights()[0]
    wrong = dict(store, **{"0": np.zeros((10, 3), np.float32), "embedkit_step": np.array(-1)})
    with pytest.raises(ValueError, match="step must be >= 0, got -1"):  # the table's check, after the weights
        adam.load_own_variables(wrong)
    np.testing.assert_array_equal(adam.get_weights()[0], adam_before)
    np.testing.assert_array_equal(adagrad.get_weights()[0], before)
    assert adagrad.table.step == 0
    keras_only = {"0": np.ones((10, 3))}  # a keras.layers.Embedding's store: float64 cast, no state
    adagrad.load_own_variables(keras_only)
    np.testing.assert_array_equal(adagrad.get_weights()[0], np.ones((10, 3), np.float32))


def test_summary_counts_the_table_and_names_its_cost():
    layer = embedkit.keras.Embedding(1000, 8, optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
    sequential(layer)
    assert layer.count_params() == 8000
    assert "O(input_dim x dim) = 8,000 weights a step" in layer.table_summary()
    assert "O(input_dim x dim)" not in embedkit.keras.Embedding(1000, 8, optimizer="sgd").table_summary()


# --- Two towers (users x items, dot product, sigmoid), against keras.layers.Embedding ---------------

USERS, ITEMS, DIM = 30, 40, 8


def two_tower(make_layer):
    user, item = keras.Input((1,), dtype="int32"), keras.Input((1,), dtype="int32")
    users, items = make_layer(USERS, "users"), make_layer(ITEMS, "items")
    score = keras.layers.Dot(axes=-1)([keras.layers.Flatten()(users(user)), keras.layers.Flatten()(items(item))])
    model = keras.Model([user, item], keras.layers.Activation("sigmoid")(score))
    return model, users, items


def interactions(samples=96, seed=7, users=USERS, items=ITEMS, batch=16):
    """Random (user, item, label) triples. On TensorFlow each batch of `batch` holds no id twice:
    Keras-TF's sparse path squares a repeated id's slices separately (docs/keras.md), which is not
    Keras's dense semantics that embedkit keeps."""
    rng = np.random.default_rng(seed)
    if BACKEND == "tensorflow":
        def distinct(rows):
            return np.concatenate([rng.permutation(rows)[:batch] for _ in range(samples // batch)])[:, None]
        ids = [distinct(users).astype(np.int32), distinct(items).astype(np.int32)]
    else:
        ids = [rng.integers(0, users, (samples, 1)).astype(np.int32), rng.integers(0, items, (samples, 1)).astype(np.int32)]
    return ids, rng.integers(0, 2, (samples, 1)).astype(np.float32)


OPTIMIZERS = [
    ("sgd", lambda: keras.optimizers.SGD(learning_rate=0.5)),
    ("momentum", lambda: keras.optimizers.SGD(learning_rate=0.5, momentum=0.9)),
    ("adam", lambda: keras.optimizers.Adam(learning_rate=0.05)),
    ("adagrad", lambda: keras.optimizers.Adagrad(learning_rate=0.5)),
]


@pytest.mark.parametrize("name,make", OPTIMIZERS, ids=[name for name, _ in OPTIMIZERS])
def test_two_towers_train_as_keras_embeddings_do(name, make):
    """The same Keras optimizer, data and initial weights: the same tables after every step within
    1e-5 (Keras's semantics, every row), then after a few epochs of fit; saved and reloaded, the same
    predictions."""
    ours, our_users, our_items = two_tower(lambda rows, n: embedkit.keras.Embedding(rows, DIM, optimizer=make(),
                                                                                    name=n, seed=rows))
    theirs, their_users, their_items = two_tower(lambda rows, n: keras.layers.Embedding(rows, DIM, name=n))
    their_users.set_weights(our_users.get_weights())
    their_items.set_weights(our_items.get_weights())
    ours.compile(optimizer=make(), loss="binary_crossentropy")  # sees only the empty anchors
    theirs.compile(optimizer=make(), loss="binary_crossentropy")
    x, y = interactions()
    for start in range(0, 96, 16):  # one train step of fit's per batch, compared after each
        batch = [part[start:start + 16] for part in x]
        ours.train_on_batch(batch, y[start:start + 16])
        theirs.train_on_batch(batch, y[start:start + 16])
        for mine, keras_layer in ((our_users, their_users), (our_items, their_items)):
            np.testing.assert_allclose(mine.get_weights()[0], keras_layer.get_weights()[0], rtol=1e-5, atol=1e-5,
                                       err_msg=f"{name}, step {start // 16 + 1}")
    ours.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
    theirs.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
    for mine, keras_layer in ((our_users, their_users), (our_items, their_items)):
        np.testing.assert_allclose(mine.get_weights()[0], keras_layer.get_weights()[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0), rtol=1e-4, atol=1e-5)


def test_two_towers_lazy_names_leave_untouched_rows_and_reload(tmp_path):
    """With an embedkit name (lazy), rows no batch touched stay bit for bit; the model saved and
    reloaded predicts the same."""
    model, users, items = two_tower(lambda rows, n: embedkit.keras.Embedding(rows, DIM, optimizer="adam", name=n))
    model.compile(optimizer="adam", loss="binary_crossentropy")
    x, y = interactions(users=20, items=25)  # users 20..29 and items 25..39 never appear
    before = users.get_weights()[0], items.get_weights()[0]
    model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    np.testing.assert_array_equal(users.get_weights()[0][20:], before[0][20:])
    np.testing.assert_array_equal(items.get_weights()[0][25:], before[1][25:])
    assert not np.array_equal(users.get_weights()[0][:20], before[0][:20])
    model.save(tmp_path / "two_tower.keras")
    reloaded = keras.models.load_model(tmp_path / "two_tower.keras")
    np.testing.assert_array_equal(reloaded.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.skipif(BACKEND != "tensorflow", reason="XLA and tf.py_function: TensorFlow only")
def test_tensorflow_refuses_xla_naming_the_fix():
    model = sequential(embedkit.keras.Embedding(20, 4))
    model.compile(optimizer="sgd", loss="binary_crossentropy", jit_compile=True)
    x, y = data(20)
    with pytest.raises(NotImplementedError, match="jit_compile=False"):
        model.fit(x, y, batch_size=16, epochs=1, verbose=0)
