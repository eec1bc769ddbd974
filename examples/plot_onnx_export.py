"""
=======================================
Serving a pipeline with ONNX Runtime
=======================================

Export a fitted :class:`~sklearn.pipeline.Pipeline`, a scaler followed by
:class:`~sklearn_optlr.OptimalLRRegressor`, to ONNX with
`skl2onnx <https://onnx.ai/sklearn-onnx/>`_, and serve it with
`ONNX Runtime <https://onnxruntime.ai/>`_, which needs neither scikit-learn nor
this package. It takes the ``onnx`` extra: ``pip install "sklearn-optlr[onnx]"``.
"""

# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

# %%
# Fit a pipeline
# --------------
# Any pipeline whose steps skl2onnx converts will do; here a
# :class:`~sklearn.preprocessing.StandardScaler` before a ReLU unit, on
# scikit-learn's bundled diabetes data.
from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_optlr import OptimalLRRegressor

X, y = load_diabetes(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)

model = make_pipeline(StandardScaler(), OptimalLRRegressor("relu", random_state=0))
model.fit(X_train, y_train)
print(f"Test R^2: {model.score(X_test, y_test):.3f}")

# %%
# Export it
# ---------
# Importing :mod:`sklearn_optlr.onnx` registers the converter of
# ``OptimalLRRegressor`` with skl2onnx; then :func:`skl2onnx.to_onnx` converts the
# pipeline as it converts scikit-learn's own. The example row sets the input's type:
# float64 here, so the graph computes in double precision, as ``predict`` does.
import numpy as np
import skl2onnx

import sklearn_optlr.onnx  # noqa: F401 (registers the converter)

onx = skl2onnx.to_onnx(model, X_train[:1].astype(np.float64))
print("Operators:", ", ".join(node.op_type for node in onx.graph.node))

# %%
# The graph is the scaler (``Sub``, ``Div``), the unit's pre-activations
# (``MatMul``, ``Add``), and the activation as it is evaluated in
# :class:`~sklearn_optlr.PiecewiseLinear`: the piece that each pre-activation
# falls in (``Less``, ``Where``), then that piece's line (``Gather``, ``Sub``,
# ``Mul``, ``Add``). The same construction serves every activation, built in or
# custom. The model is saved as any ONNX model is.
from pathlib import Path
from tempfile import TemporaryDirectory

directory = TemporaryDirectory()
path = Path(directory.name) / "optimal_lr_pipeline.onnx"
path.write_bytes(onx.SerializeToString())
print(f"{path.name}: {path.stat().st_size:,} bytes")

# %%
# Serve it
# --------
# An :class:`onnxruntime.InferenceSession` loads the file and predicts. It returns
# one column per output, ``(n_samples, 1)`` here, as skl2onnx's converters of
# scikit-learn's regressors do.
import onnxruntime

session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
input_name = session.get_inputs()[0].name
(served,) = session.run(None, {input_name: X_test.astype(np.float64)})
print("Served shape:", served.shape)

expected = model.predict(X_test)
difference = np.max(np.abs(served[:, 0] - expected)) / np.max(np.abs(expected))
print(f"Largest difference from predict, relative to the largest prediction: {difference:.1e}")
directory.cleanup()

# %%
# In float32
# ----------
# Exported with a float32 row, the graph computes in single precision, its
# coefficients rounded to float32, and agrees with ``predict`` to float32's
# precision.
onx32 = skl2onnx.to_onnx(model, X_train[:1].astype(np.float32))
session32 = onnxruntime.InferenceSession(
    onx32.SerializeToString(), providers=["CPUExecutionProvider"]
)
input_name32 = session32.get_inputs()[0].name
(served32,) = session32.run(None, {input_name32: X_test.astype(np.float32)})
difference32 = np.max(np.abs(served32[:, 0] - expected)) / np.max(np.abs(expected))
print(f"float32 graph: largest relative difference {difference32:.1e}")
