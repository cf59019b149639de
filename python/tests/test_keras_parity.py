"""Parity with real Keras 3 (JAX CPU backend, versions pinned in python/requirements-test.txt):
lookups of every index rank, masks, get_config() round trips, initializer ranges, and SGD /
Adagrad / Adam steps against Keras's optimizers on the same gradients.

Keras on JAX trains an Embedding with the dense gradient JAX's autodiff gives (duplicates summed by
scatter-add), so embedkit's folding of duplicate ids is exactly Keras's there. Keras on TensorFlow
instead passes IndexedSlices, one row per occurrence, and Adagrad/Adam then accumulate each
occurrence's square separately: test_duplicate_ids_fold_before_the_optimizer documents that
difference. Out-of-range ids are not compared with Keras: JAX clamps them silently, and embedkit
raises IndexError in TensorFlow's CPU wording (tested in test_errors.py). Negative ids are refused
on purpose and not compared either.
"""
import numpy as np
import pytest

keras = pytest.importorskip("keras")
jax = pytest.importorskip("jax")

import embedkit  # noqa: E402


def keras_table(input_dim=40, output_dim=6, seed=0, **options):
    layer = keras.layers.Embedding(input_dim, output_dim, **options)
    layer.build()
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.standard_normal((input_dim, output_dim)).astype(np.float32)])
    return layer


def test_constructor_has_keras_names_and_defaults():
    import inspect

    ours = inspect.signature(embedkit.Embedding.__init__).parameters
    for name, parameter in inspect.signature(keras.layers.Embedding.__init__).parameters.items():
        if parameter.kind in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL) or name == "self":
            continue
        assert name in ours, name
        assert ours[name].default == parameter.default, name
    keras_positional = [name for name, parameter in inspect.signature(keras.layers.Embedding.__init__).parameters.items()
                        if parameter.kind == parameter.POSITIONAL_OR_KEYWORD]
    assert [name for name, parameter in ours.items() if parameter.kind == parameter.POSITIONAL_OR_KEYWORD] == keras_positional


@pytest.mark.parametrize("rank", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_lookup_and_mask_of_every_rank(rank, dtype):
    reference = keras_table(mask_zero=True)
    table = embedkit.Embedding.from_keras(reference)
    ids = np.random.default_rng(rank).integers(0, 40, size=(3, 2, 4, 2)[:rank]).astype(dtype)
    if rank > 0:
        ids.flat[0] = 0  # padding id
    np.testing.assert_array_equal(table(ids), np.asarray(reference(ids)))
    np.testing.assert_array_equal(table.compute_mask(ids), np.asarray(reference.compute_mask(ids)))


def test_empty_batch_and_no_mask():
    reference = keras_table()
    table = embedkit.Embedding.from_keras(reference)
    ids = np.zeros((2, 0, 3), np.int32)
    assert table(ids).shape == np.asarray(reference(ids)).shape
    assert table.compute_mask(np.array([0, 1])) is None and reference.compute_mask(np.array([0, 1])) is None


KERAS_LAYERS = [
    dict(),
    dict(mask_zero=True, name="words", trainable=False),
    dict(embeddings_initializer="normal"),
    dict(embeddings_initializer="truncated_normal"),
    dict(embeddings_initializer="zeros"),
    dict(embeddings_initializer="ones"),
    dict(embeddings_initializer="glorot_uniform"),
    dict(embeddings_initializer="he_normal"),
    dict(embeddings_initializer="lecun_uniform"),
    dict(embeddings_initializer=keras.initializers.RandomNormal(mean=0.1, stddev=0.2, seed=3)),
    dict(embeddings_initializer=keras.initializers.RandomUniform(-1.0, 2.0, seed=9)),
    dict(embeddings_regularizer=keras.regularizers.L2(0.01)),
    dict(embeddings_regularizer=keras.regularizers.L1L2(l1=0.1, l2=0.2)),
    dict(embeddings_constraint=keras.constraints.NonNeg()),
    dict(embeddings_constraint=keras.constraints.MaxNorm(max_value=1.5, axis=1)),
]


def same_keras_object(kind, original, ours):
    """Whether two serialized Keras initializers, regularizers or constraints act the same.
    embedkit writes each in one canonical spelling (GlorotUniform as the VarianceScaling it is, L2 as
    L1L2 with l1 = 0, Zeros as Constant(0)), so they are compared by what Keras makes of them."""
    if original is None or ours is None:
        return original is None and ours is None
    x = np.random.default_rng(4).standard_normal((50, 8)).astype(np.float32)
    if kind == "embeddings_initializer":
        original, ours = dict(original, config=dict(original["config"])), dict(ours, config=dict(ours["config"]))
        for config in (original["config"], ours["config"]):
            if "seed" in config:
                config["seed"] = 11  # random ones: the same draws from both
        made = [keras.initializers.deserialize(o)((50, 8)) for o in (original, ours)]
    elif kind == "embeddings_regularizer":
        made = [keras.regularizers.deserialize(o)(x) for o in (original, ours)]
    else:
        made = [keras.constraints.deserialize(o)(x) for o in (original, ours)]
    return np.allclose(np.asarray(made[0]), np.asarray(made[1]), rtol=1e-6, atol=0)


@pytest.mark.parametrize("options", KERAS_LAYERS, ids=lambda options: ",".join(options) or "defaults")
def test_get_config_round_trips(options):
    original = keras.layers.Embedding(100, 8, **options).get_config()
    table = embedkit.Embedding.from_config(original)
    ours = table.get_config()
    # Into Keras again: the Keras keys of our config make the same Keras layer.
    again = keras.layers.Embedding.from_config({key: ours[key] for key in original if key in ours}).get_config()
    for key in ("embeddings_initializer", "embeddings_regularizer", "embeddings_constraint"):
        assert same_keras_object(key, original[key], again.pop(key)), key
        original.pop(key)
    assert again == original
    # And into embedkit again: the same table definition, seed included.
    assert embedkit.Embedding.from_config(ours).get_config() == ours


INITIALIZERS = [
    # name, Keras's bound on |w| for a (2000, 16) matrix (None: unbounded), scale of the std check
    ("uniform", 0.05),
    ("normal", None),
    ("truncated_normal", 2 * 0.05),
    ("glorot_uniform", np.sqrt(6 / (2000 + 16))),
    ("glorot_normal", 2 * np.sqrt(2 / (2000 + 16)) / 0.87962566103423978),  # Keras's truncation correction
    ("he_uniform", np.sqrt(6 / 2000)),
    ("lecun_normal", 2 * np.sqrt(1 / 2000) / 0.87962566103423978),
]


@pytest.mark.parametrize("name,bound", INITIALIZERS, ids=[name for name, _ in INITIALIZERS])
def test_initializer_ranges_match_keras(name, bound):
    reference = keras.layers.Embedding(2000, 16, embeddings_initializer=name)
    reference.build()
    theirs = np.asarray(reference.get_weights()[0])
    ours = embedkit.Embedding(2000, 16, embeddings_initializer=name, seed=1).embeddings
    if bound is not None:
        assert np.abs(ours).max() <= bound * (1 + 1e-6)
        assert np.abs(ours).max() >= 0.9 * np.abs(theirs).max()
    assert abs(ours.std() / theirs.std() - 1) < 0.05
    assert abs(ours.mean()) < 0.05 * theirs.std() + 1e-3


def keras_steps(optimizer, weights, batches):
    """Keras's own training of the table: the gradient JAX's autodiff gives for the loss
    sum(lookup(ids) * upstream), applied by the Keras optimizer, step after step."""
    variable = keras.Variable(weights)

    def loss(table, ids, upstream):
        return jax.numpy.sum(keras.ops.take(table, ids, axis=0) * upstream)

    for ids, upstream in batches:
        gradient = jax.grad(loss)(variable.value, ids, upstream)
        optimizer.apply_gradients([(gradient, variable)])
    return np.asarray(variable.numpy())


def embedkit_steps(optimizer, weights, batches):
    table = embedkit.Embedding(weights.shape[0], weights.shape[1], optimizer=optimizer, placement="cpu")
    table.set_weights([weights])
    for ids, upstream in batches:
        table.train_step(ids, upstream)
    return table.embeddings


def distinct_batches(rows=40, dim=6, steps=5, shape=(3, 4), seed=0):
    rng = np.random.default_rng(seed)
    size = int(np.prod(shape))
    return [(rng.permutation(rows)[:size].reshape(shape), rng.standard_normal(shape + (dim,)).astype(np.float32))
            for _ in range(steps)]


OPTIMIZERS = [
    ("sgd", lambda: keras.optimizers.SGD(learning_rate=0.1), {}),
    ("adagrad", lambda: keras.optimizers.Adagrad(learning_rate=0.1), {}),
    ("adam", lambda: keras.optimizers.Adam(learning_rate=0.01), {"lazy": False}),
    ("adam_weight_decay", lambda: keras.optimizers.Adam(learning_rate=0.01, weight_decay=0.004), {"lazy": False}),
]


@pytest.mark.parametrize("name,make,extra", OPTIMIZERS, ids=[name for name, _, _ in OPTIMIZERS])
def test_training_steps_match_keras_optimizers(name, make, extra):
    weights = np.random.default_rng(1).standard_normal((40, 6)).astype(np.float32)
    batches = distinct_batches()
    expected = keras_steps(make(), weights, batches)
    serialized = keras.optimizers.serialize(make())  # the Keras object itself, as Keras writes it
    serialized["config"].update(extra)
    np.testing.assert_allclose(embedkit_steps(serialized, weights, batches), expected, rtol=2e-6, atol=2e-7)


def test_duplicate_ids_fold_before_the_optimizer():
    """Adagrad on a batch with id 1 three times. embedkit folds the three gradient rows first,
    g = g1 + g2 + g3, and accumulates g²: that is Keras on JAX (checked), whose gradient is dense.
    Keras on TensorFlow receives IndexedSlices instead and its scatter_add accumulates
    g1² + g2² + g3² (written out below, TensorFlow not being installed): a different step, which
    this test documents by asserting that the two differ."""
    weights = np.random.default_rng(2).standard_normal((5, 3)).astype(np.float32)
    ids = np.array([1, 1, 2, 1])
    upstream = np.random.default_rng(3).standard_normal((4, 3)).astype(np.float32)
    lr, initial, epsilon = 0.1, 0.1, 1e-7

    ours = embedkit_steps(keras.optimizers.serialize(keras.optimizers.Adagrad(learning_rate=lr)), weights,
                          [(ids, upstream)])
    keras_on_jax = keras_steps(keras.optimizers.Adagrad(learning_rate=lr), weights, [(ids, upstream)])
    np.testing.assert_allclose(ours, keras_on_jax, rtol=2e-6, atol=2e-7)

    per_occurrence = weights.astype(np.float64).copy()  # TensorFlow's IndexedSlices path
    accumulator = np.full(weights.shape, initial)
    np.add.at(accumulator, ids, upstream.astype(np.float64) ** 2)
    np.subtract.at(per_occurrence, ids, lr * upstream / np.sqrt(accumulator[ids] + epsilon))
    np.testing.assert_allclose(ours[[0, 2, 3, 4]], per_occurrence[[0, 2, 3, 4]], rtol=1e-5)  # id 2 once: same
    assert np.abs(ours[1] - per_occurrence[1]).max() > 1e-3  # id 1 three times: not the same step


# Keras optimizer objects keep Keras's semantics (lazy: false): rows absent from a batch move as
# Keras moves them (velocity decay, Adam's moments, FTRL's reset of never-touched rows, weight decay).
KERAS_SEMANTICS = [
    ("sgd", lambda: keras.optimizers.SGD(learning_rate=0.1)),
    ("momentum", lambda: keras.optimizers.SGD(learning_rate=0.1, momentum=0.9)),
    ("nesterov", lambda: keras.optimizers.SGD(learning_rate=0.1, momentum=0.9, nesterov=True)),
    ("sgd_weight_decay", lambda: keras.optimizers.SGD(learning_rate=0.1, weight_decay=0.05)),
    ("adagrad", lambda: keras.optimizers.Adagrad(learning_rate=0.1)),
    ("adagrad_weight_decay", lambda: keras.optimizers.Adagrad(learning_rate=0.1, weight_decay=0.05)),
    ("adam", lambda: keras.optimizers.Adam(learning_rate=0.01)),
    ("adam_weight_decay", lambda: keras.optimizers.Adam(learning_rate=0.01, weight_decay=0.004)),
    ("ftrl", lambda: keras.optimizers.Ftrl(learning_rate=0.1, l1_regularization_strength=0.01,
                                           l2_regularization_strength=0.02,
                                           l2_shrinkage_regularization_strength=0.01, beta=0.5)),
]


@pytest.mark.parametrize("name,make", KERAS_SEMANTICS, ids=[name for name, _ in KERAS_SEMANTICS])
def test_keras_optimizer_objects_keep_keras_semantics(name, make):
    """8 steps of 12 ids out of 40 rows (most rows absent from each batch): the Keras object itself
    given to embedkit.Embedding, every row against Keras's own training."""
    weights = np.random.default_rng(5).standard_normal((40, 6)).astype(np.float32)
    batches = distinct_batches(steps=8, seed=6)
    expected = keras_steps(make(), weights, batches)
    table = embedkit.Embedding(40, 6, optimizer=make(), placement="cpu")
    assert table.get_config()["optimizer"]["config"]["lazy"] is False
    table.set_weights([weights])
    for ids, upstream in batches:
        table.train_step(ids, upstream)
    # Keras's FTRL runs float32 pow through XLA, a few ulps from libm's powf, over 8 steps.
    np.testing.assert_allclose(table.embeddings, expected, rtol=1e-5, atol=1e-6)
    # Its serialized dict keeps the lazy default: off Keras exactly where Keras moves absent rows.
    lazy = embedkit_steps(keras.optimizers.serialize(make()), weights, batches)
    assert (np.abs(lazy - expected).max() > 1e-4) == (name not in ("sgd", "adagrad"))


def test_keras_semantics_cost_is_stated_and_names_stay_lazy():
    """A Keras object steps every row: the summary and the placement sentence say what it costs.
    Names and serialized dicts keep the lazy default, and leave rows absent from a batch bit for bit."""
    dense = embedkit.Embedding(1000, 8, optimizer=keras.optimizers.Adam(), placement="cpu")
    cost = "every train step updates all 1,000 rows (lazy: false, Keras's semantics): O(input_dim x dim) = 8,000"
    assert cost in dense.summary() and cost in dense.placement["reason"]
    from_keras = embedkit.Embedding.from_keras(keras_table(), optimizer=keras.optimizers.Adam())
    assert from_keras.get_config()["optimizer"]["config"]["lazy"] is False
    for optimizer in ("adam", keras.optimizers.serialize(keras.optimizers.Adam()), {"class_name": "Adam", "config": {}}):
        table = embedkit.Embedding(40, 6, optimizer=optimizer, placement="cpu")
        assert table.get_config()["optimizer"]["config"]["lazy"] is True
        assert "O(input_dim x dim)" not in table.summary()
        before = table.embeddings
        ids, upstream = distinct_batches(steps=1)[0]
        table.train_step(ids, upstream)
        absent = np.setdiff1d(np.arange(40), ids.ravel())
        np.testing.assert_array_equal(table.embeddings[absent], before[absent])
        assert not np.array_equal(table.embeddings[ids.ravel()], before[ids.ravel()])
