"""scikit-learn's estimator contract, for the default model and one model per kind of
activation, batching, step rule and solver."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_optlr import OptimalLRRegressor, PiecewiseLinear

SAMPLE_WEIGHT_IS_NOT_REPETITION = (
    "With average=True the model is the mean of the iterates, and a repeated row adds an "
    "iterate where an integer weight does not (as in SGDRegressor with averaging); "
    "average='auto', which keeps the last iterate here, passes this check."
)


def expected_failed_checks(estimator):
    if estimator.batch_size == 1 and estimator.average is True:
        return {
            "check_sample_weight_equivalence_on_dense_data": SAMPLE_WEIGHT_IS_NOT_REPETITION,
            "check_sample_weight_equivalence_on_sparse_data": SAMPLE_WEIGHT_IS_NOT_REPETITION,
        }
    return {}


@parametrize_with_checks(
    [
        OptimalLRRegressor(),
        # Stochastic updates with a flat piece: the path most likely to leave units dead.
        OptimalLRRegressor("relu", batch_size=1, random_state=0),
        # Averaging over the suffix of training, always (not only when it fits better).
        OptimalLRRegressor("relu", batch_size=1, average=True, random_state=0),
        # The seed's plain method, with the exact line search instead of the quadratic step.
        OptimalLRRegressor("abs", step="exact", solver="gd", average=False, random_state=0),
        # Full batch takes its own solver path (conjugate gradients); leaky ReLU cannot reach
        # R^2 0.5 on the checks' signed linear target, so it relies on the poor_score tag.
        OptimalLRRegressor("leaky_relu", batch_size="full"),
        # A custom activation must survive clone, set_params and pickling like a string one.
        OptimalLRRegressor(PiecewiseLinear([-1, 1], [-1, 1], 0.1, 0.1), alpha=1e-3),
    ],
    expected_failed_checks=expected_failed_checks,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
