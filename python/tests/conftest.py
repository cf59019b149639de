"""Shared test setup: Keras runs on JAX's CPU backend where JAX is installed, else on PyTorch's (the
environment with PyPI's torch and Keras), else on TensorFlow's (scripts/test.sh keras-backends);
KERAS_BACKEND, when set, wins."""
import importlib.util
import os

if "KERAS_BACKEND" not in os.environ:
    installed = [name for name in ("jax", "torch", "tensorflow") if importlib.util.find_spec(name) is not None]
    os.environ["KERAS_BACKEND"] = installed[0] if installed else "jax"
os.environ.setdefault("JAX_PLATFORMS", "cpu")
