# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""ONNX export: onnxruntime serves what ``predict`` returns, alone and in a Pipeline.

Skipped unless the ``onnx`` extra (skl2onnx, onnxruntime) is installed; the ``tests``
extra brings it, so CI runs these.
"""

import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_optlr import OptimalLRRegressor, PiecewiseLinear
from sklearn_optlr._activations import resolve_activation

skl2onnx = pytest.importorskip("skl2onnx")
onnxruntime = pytest.importorskip("onnxruntime")
import sklearn_optlr.onnx  # noqa: E402, F401 (registers the converter)

#: Several knots, outer slopes of both signs, values off the identity: every part of
#: the construction (piece, anchor knot, anchor value, slope) shows in the output.
CUSTOM = PiecewiseLinear(
    x=[-1.5, 0.25, 2.0], y=[0.75, -0.5, 1.25], left_slope=-0.3, right_slope=0.6
)

# leaky_relu's default slope 0.01 has no exact float32 form: ONNX's LeakyRelu, which
# holds it as a float32, would be off by 2e-8 relative in float64.
ACTIVATIONS = ["identity", "relu", "leaky_relu", "abs", "hard_tanh", CUSTOM]
ACTIVATION_IDS = ["identity", "relu", "leaky_relu", "abs", "hard_tanh", "custom"]

#: Issue 17's tolerances: ``predict`` to 1e-12 relative in float64, 1e-5 in float32.
RTOL = {np.float64: 1e-12, np.float32: 1e-5}

N_FEATURES = 3


def serve(onx, X):
    """The output of the exported graph on ``X``, as onnxruntime computes it."""
    session = onnxruntime.InferenceSession(
        onx.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    (output,) = session.run(None, {session.get_inputs()[0].name: X})
    return output


def fit(model, X, Y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a few epochs, on purpose
        return model.fit(X, Y)


def data(dtype, n_outputs, n_samples=60, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, N_FEATURES))
    # Targets in every activation's range, so that fit has nothing to warn about.
    Y = 0.45 + 0.4 * np.tanh(X @ rng.standard_normal((N_FEATURES, n_outputs)))
    return X.astype(dtype), (Y[:, 0] if n_outputs == 1 else Y)


def knot_probes(activation, dtype):
    """Pre-activations on every piece: each knot, its neighbours in ``dtype`` on either
    side, the midpoints between knots, and points far out on both outer pieces."""
    knots = np.asarray(activation.knots, dtype=dtype)
    neighbours = np.concatenate(
        (np.nextafter(knots, dtype(-np.inf)), np.nextafter(knots, dtype(np.inf)))
    )
    midpoints = (knots[:-1] + knots[1:]) / 2
    outside = np.array([knots[0] - 3, knots[0] - 0.5, knots[-1] + 0.5, knots[-1] + 3], dtype)
    return np.concatenate((knots, neighbours, midpoints, outside, [dtype(0)])).astype(dtype)


def by_interpolation(activation, z):
    """The activation as numpy's interpolation between its knots, extended linearly."""
    knots, values, slopes = activation.knots, activation.values, activation.slopes
    inside = np.interp(z, knots, values)
    below = values[0] + slopes[0] * (z - knots[0])
    above = values[-1] + slopes[-1] * (z - knots[-1])
    return np.where(z < knots[0], below, np.where(z > knots[-1], above, inside))


@pytest.mark.parametrize("n_outputs", [1, 2])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("activation", ACTIVATIONS, ids=ACTIVATION_IDS)
def test_matches_predict_on_every_piece_and_knot(activation, dtype, n_outputs):
    """With weights that make the pre-activations the inputs themselves, exactly, every
    knot and every piece is reached, and the graph gives predict's numbers."""
    model = fit(OptimalLRRegressor(activation, max_iter=2), *data(dtype, n_outputs))
    resolved = resolve_activation(model.activation, model.negative_slope)
    probes = knot_probes(resolved, dtype)
    # Output j's pre-activation is feature j, exactly (the other products are zeros):
    # the probes, the knots' neighbours in dtype among them.
    coef = np.eye(n_outputs, N_FEATURES, dtype=dtype)
    model.coef_ = coef[0] if n_outputs == 1 else coef
    model.intercept_ = dtype(0) if n_outputs == 1 else np.zeros(n_outputs, dtype=dtype)
    X = np.zeros((probes.size, N_FEATURES), dtype=dtype)
    X[:, :n_outputs] = probes[:, None]

    expected = model.predict(X)
    onx = skl2onnx.to_onnx(model, X[:1])
    got = serve(onx, X)

    assert got.dtype == dtype
    assert got.shape == (probes.size, n_outputs)
    np.testing.assert_allclose(got, expected.reshape(got.shape), rtol=RTOL[dtype], atol=0)
    # And both are the activation, by a formula of their own: every column's
    # pre-activations are the probes.
    reference = np.tile(by_interpolation(resolved, probes.astype(np.float64))[:, None], n_outputs)
    scale = np.max(np.abs(reference))
    np.testing.assert_allclose(got, reference, rtol=RTOL[dtype], atol=RTOL[dtype] * scale)


@pytest.mark.parametrize("in_pipeline", [False, True], ids=["alone", "pipeline"])
@pytest.mark.parametrize("n_outputs", [1, 2])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("activation", ACTIVATIONS, ids=ACTIVATION_IDS)
def test_fitted_model_matches_predict(activation, dtype, n_outputs, in_pipeline):
    X, Y = data(dtype, n_outputs)
    model = OptimalLRRegressor(activation, max_iter=3, random_state=0)
    if in_pipeline:
        model = make_pipeline(StandardScaler(), model)
    fit(model, X, Y)
    X_new = data(dtype, n_outputs, n_samples=200, seed=1)[0] * 2

    expected = model.predict(X_new)
    got = serve(skl2onnx.to_onnx(model, X_new[:1]), X_new)

    assert got.dtype == dtype
    assert got.shape == (X_new.shape[0], n_outputs)
    # The product X @ W^T is summed in another order than numpy's, which moves it by a
    # rounding of its largest terms, not of the result: relative to the outputs' scale.
    scale = np.max(np.abs(expected))
    np.testing.assert_allclose(
        got, expected.reshape(got.shape), rtol=RTOL[dtype], atol=RTOL[dtype] * scale
    )


def test_float32_model_served_in_float64_is_predict_on_float64_input():
    """predict upcasts a float32 model for float64 input; a double graph does the same."""
    X, y = data(np.float32, 1)
    model = fit(OptimalLRRegressor(CUSTOM, max_iter=3), X, y)
    assert model.coef_.dtype == np.float32
    X64 = data(np.float64, 1, seed=1)[0]

    got = serve(skl2onnx.to_onnx(model, X64[:1]), X64)

    assert got.dtype == np.float64
    expected = model.predict(X64)
    np.testing.assert_allclose(got[:, 0], expected, rtol=1e-12, atol=1e-12 * np.abs(expected).max())


def test_float64_model_served_in_float32_keeps_float32_precision():
    X, y = data(np.float64, 2)
    model = fit(OptimalLRRegressor("hard_tanh", max_iter=3), X, y)
    X32 = data(np.float32, 2, seed=1)[0]

    got = serve(skl2onnx.to_onnx(model, X32[:1]), X32)

    assert got.dtype == np.float32
    expected = model.predict(X32)
    assert expected.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


def test_unfitted_model_raises_not_fitted_error():
    X = np.zeros((1, N_FEATURES))
    with pytest.raises(NotFittedError):
        skl2onnx.to_onnx(OptimalLRRegressor(), X)
    pipeline = make_pipeline(StandardScaler().fit(np.eye(N_FEATURES)), OptimalLRRegressor())
    with pytest.raises(NotFittedError):
        skl2onnx.to_onnx(pipeline, X)


def test_integer_input_is_refused_with_advice():
    X, y = data(np.float64, 1)
    model = fit(OptimalLRRegressor(max_iter=2), X, y)
    with pytest.raises(TypeError, match=r"float or double input; got Int64TensorType"):
        skl2onnx.to_onnx(model, X[:1].astype(np.int64))


def test_import_without_skl2onnx_names_the_extra():
    code = (
        "import sys; sys.modules['skl2onnx'] = None\n"
        "try:\n"
        "    import sklearn_optlr.onnx\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert 'pip install "sklearn-optlr[onnx]"' in result.stdout


def test_import_of_the_package_does_not_import_skl2onnx():
    code = "import sys, sklearn_optlr; print('skl2onnx' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
