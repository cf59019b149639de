"""Shared test setup: Keras runs on JAX's CPU backend; helpers every test file uses."""
import os

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
