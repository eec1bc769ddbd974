# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""Export to ONNX through skl2onnx.

Importing this module registers a converter for
:class:`~sklearn_optlr.OptimalLRRegressor` with :mod:`skl2onnx`, after which
``skl2onnx.to_onnx`` converts the estimator, alone or as the last step of a
:class:`~sklearn.pipeline.Pipeline` after scikit-learn's preprocessing, and
onnxruntime serves it::

    import skl2onnx
    import sklearn_optlr.onnx  # noqa: F401 (registers the converter)

    onx = skl2onnx.to_onnx(pipeline, X[:1])

It needs the ``onnx`` extra: ``pip install "sklearn-optlr[onnx]"``.

The graph
---------
``predict(X) = sigma(X W^T + b)`` becomes a MatMul and an Add, then the activation,
built from its :class:`~sklearn_optlr.PiecewiseLinear` (every built-in one is one,
so they and any custom one share one construction). The activation is evaluated
as :meth:`~sklearn_optlr.PiecewiseLinear.value_and_slope` evaluates it, with the
same roundings: the piece is the number of knots at or below the pre-activation
``z`` (a chain of Less and Where), and the output is ``v + s (z - k)``, with the
piece's slope ``s`` and the value ``v`` at its knot ``k`` (the first knot for the
leftmost piece) looked up with Gather. A sum of shifted ReLUs would be the same
function, but rounds differently. ONNX's LeakyRelu is not used: it holds its slope
as a 32-bit float.

The operators (MatMul, Add, Sub, Mul, Less, Where, Gather) are in ONNX's opset 9,
in float and double.

Types and shapes
----------------
The graph computes in its input's type, float32 or float64, as skl2onnx's own
linear models do: the coefficients are rounded to float32 for a float32 input.
``predict`` computes in the wider of the model's and the input's dtype, so
onnxruntime gives ``predict``'s results to a few units in the last place of float64
for a float64 input (``to_onnx(model, X[:1].astype(np.float64))``), and to float32's
precision for a float32 input. The matrix product sums in another order than
numpy's: where its terms cancel, a prediction near zero agrees in absolute terms,
not to its own last digits. The output has shape ``(n_samples, n_outputs)``, and
``(n_samples, 1)`` where ``predict`` returns a 1-D array (a model fitted on 1-D
``y``), as skl2onnx's converters of scikit-learn's regressors give it.

ONNX graphs take dense tensors: a model fitted on sparse data converts, and is
served dense input.
"""

import numpy as np

try:
    import skl2onnx
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, guess_proto_type
    from skl2onnx.common.utils import check_input_and_output_numbers
except ImportError as exc:
    raise ImportError(
        "sklearn_optlr.onnx requires skl2onnx, which could not be imported. Install the "
        'onnx extra with `pip install "sklearn-optlr[onnx]"` (or `pip install skl2onnx '
        "onnxruntime`)."
    ) from exc

from onnx import TensorProto
from sklearn.utils.validation import check_is_fitted

from ._activations import resolve_activation
from ._regressor import OptimalLRRegressor

__all__ = []

#: The name the converter is registered under, skl2onnx's "library + class" form.
_ALIAS = "SklearnOptlrOptimalLRRegressor"


def _n_outputs(model):
    # coef_ is 1-D exactly when predict returns 1-D (the class's Attributes).
    coef = np.asarray(model.coef_)
    return 1 if coef.ndim == 1 else coef.shape[0]


def _shape_calculator(operator):
    """Declare the output: the input's float type, shape ``[N, n_outputs]``."""
    check_input_and_output_numbers(operator, input_count_range=1, output_count_range=1)
    model = operator.raw_operator
    check_is_fitted(model)
    input_type = operator.inputs[0].type
    if not isinstance(input_type, (FloatTensorType, DoubleTensorType)):
        raise TypeError(
            "OptimalLRRegressor converts for float or double input; got "
            f"{type(input_type).__name__}. Convert with float data, e.g. "
            "`to_onnx(model, X[:1].astype(np.float32))`."
        )
    n_samples = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = type(input_type)([n_samples, _n_outputs(model)])


def _converter(scope, operator, container):
    """Emit ``sigma(X W^T + b)`` in the input's float type."""
    model = operator.raw_operator
    check_is_fitted(model)
    proto_type = guess_proto_type(operator.inputs[0].type)
    dtype = np.float32 if proto_type == TensorProto.FLOAT else np.float64
    activation = resolve_activation(model.activation, model.negative_slope)

    def constant(name, values, proto=proto_type, cast=dtype):
        values = np.asarray(values, dtype=cast)
        unique = scope.get_unique_variable_name(name)
        container.add_initializer(unique, proto, list(values.shape), values.ravel().tolist())
        return unique

    def node(op_type, inputs, name):
        output = scope.get_unique_variable_name(name)
        container.add_node(op_type, inputs, output, name=scope.get_unique_operator_name(op_type))
        return output

    # Pre-activations, as predict's X @ coef.T + intercept: a product, then a sum.
    weights = np.array(model.coef_, dtype=dtype, ndmin=2).T
    intercept = np.array(model.intercept_, dtype=dtype, ndmin=1)
    product = node("MatMul", [operator.inputs[0].full_name, constant("coef", weights)], "product")
    z = node("Add", [product, constant("intercept", intercept)], "pre_activation")

    # The piece: how many knots lie at or below z (numpy's searchsorted, side="right").
    # From the last knot down, each knot above z lowers it to that knot's index, so the
    # lowest one wins; NaN compares false everywhere and lands on the last piece, as in
    # numpy.
    knots = activation.knots.astype(dtype)
    piece = constant("last_piece", len(knots), TensorProto.INT64, np.int64)
    for index in reversed(range(len(knots))):
        below = node("Less", [z, constant("knot", knots[index])], "below_knot")
        piece = node(
            "Where", [below, constant("piece", index, TensorProto.INT64, np.int64), piece], "piece"
        )

    # Each piece's slope, and its knot and the value there: piece p starts at knot
    # p - 1, and the leftmost piece is anchored at the first knot, as in value_and_slope.
    values = activation.values.astype(dtype)
    anchor_knots = np.concatenate((knots[:1], knots))
    anchor_values = np.concatenate((values[:1], values))
    slope = node("Gather", [constant("slopes", activation.slopes), piece], "slope")
    anchor_knot = node("Gather", [constant("anchor_knots", anchor_knots), piece], "anchor_knot")
    anchor_value = node("Gather", [constant("anchor_values", anchor_values), piece], "anchor_value")
    offset = node("Sub", [z, anchor_knot], "offset")
    rise = node("Mul", [slope, offset], "rise")
    container.add_node(
        "Add",
        [rise, anchor_value],
        operator.outputs[0].full_name,
        name=scope.get_unique_operator_name("Add"),
    )


skl2onnx.update_registered_converter(OptimalLRRegressor, _ALIAS, _shape_calculator, _converter)
