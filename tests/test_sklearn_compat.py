"""scikit-learn's estimator contract, for the default model and one model per kind of
activation and batching."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_optlr import OptimalLRRegressor, PiecewiseLinear


@parametrize_with_checks(
    [
        OptimalLRRegressor(),
        # Stochastic updates with a flat piece: the path most likely to leave units dead.
        OptimalLRRegressor("relu", batch_size=1, random_state=0),
        # Full batch takes its own solver path; leaky ReLU cannot reach R^2 0.5 on the checks'
        # signed linear target, so it relies on the poor_score tag being set.
        OptimalLRRegressor("leaky_relu", batch_size="full"),
        # A custom activation must survive clone, set_params and pickling like a string one.
        OptimalLRRegressor(PiecewiseLinear([-1, 1], [-1, 1], 0.1, 0.1), alpha=1e-3),
    ]
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
