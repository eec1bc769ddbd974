"""
=========================================
A custom piecewise-linear activation
=========================================

Any continuous piecewise-linear function can be the activation of
:class:`~sklearn_optlr.OptimalLRRegressor`: build it with
:class:`~sklearn_optlr.PiecewiseLinear` from its knots, its values there and the
slopes beyond the first and last knot. The optimal learning rate stays exact,
because the loss is quadratic inside every linear region of any such function.

Here the targets are fractions, bounded to [0, 1], and a "hard sigmoid" that
clips to [0, 1] fits them better than a linear model.
"""

# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

# %%
# The activation
# --------------
# Linear between the knots (0, 0) and (1, 1), flat outside. Its derivative is
# the slope of the piece each input lies in (at a knot, the piece to its right).
import matplotlib.pyplot as plt
import numpy as np

from sklearn_optlr import PiecewiseLinear

unit_clip = PiecewiseLinear(x=[0.0, 1.0], y=[0.0, 1.0], left_slope=0.0, right_slope=0.0)
print(unit_clip)
print("slopes of the pieces:", unit_clip.slopes)

z = np.linspace(-1.5, 2.5, 401)
fig, ax = plt.subplots(figsize=(5, 3.5), layout="constrained")
ax.plot(z, unit_clip(z), label=r"$\sigma(z)$")
ax.plot(z, unit_clip.derivative(z), linestyle="--", label=r"$\sigma'(z)$")
ax.plot(unit_clip.knots, unit_clip.values, "o", color="C0")
ax.set(xlabel="z", title="unit_clip: knots at 0 and 1")
ax.legend()

# %%
# Data with bounded targets
# -------------------------
# A share (say, of capacity used) that depends linearly on the features until it
# saturates at 0 or 1, observed with a little noise.
from sklearn.model_selection import train_test_split

rng = np.random.default_rng(0)
X = rng.standard_normal((2_000, 8))
y = np.clip(X @ rng.uniform(-0.4, 0.4, 8) + 0.5, 0.0, 1.0) + 0.02 * rng.standard_normal(2_000)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
print(f"{np.mean((y < 0.02) | (y > 0.98)):.0%} of the targets are saturated")

# %%
# The custom activation against a linear model
# --------------------------------------------
# A :class:`PiecewiseLinear` is passed as ``activation`` like a built-in name,
# and can be a value in a parameter grid. The weights start at zero and the
# intercept in the middle of the steepest piece (here 0.5), so every unit starts
# active.
from sklearn_optlr import OptimalLRRegressor

models = {
    "identity (linear)": OptimalLRRegressor("identity", batch_size="full", random_state=0),
    "unit_clip (custom)": OptimalLRRegressor(unit_clip, batch_size="full", random_state=0),
}
fig, axes = plt.subplots(1, 2, figsize=(9, 4), sharey=True, layout="constrained")
for ax, (name, model) in zip(axes, models.items()):
    model.fit(X_train, y_train)
    score = model.score(X_test, y_test)
    print(f"{name:>18}: test R^2 {score:.4f} after {model.n_iter_} epochs")
    ax.scatter(y_test, model.predict(X_test), s=6, alpha=0.5)
    ax.axline((0, 0), slope=1, color="gray", linestyle="--", linewidth=1)
    ax.set(title=f"{name}, R$^2$ = {score:.3f}", xlabel="Measured")
axes[0].set_ylabel("Predicted")

# %%
# The linear model predicts values below 0 and above 1 and bends its slope to
# compromise between the saturated and the linear parts; the clipped model
# matches both. Built-in activations cover the common cases (``"identity"``,
# ``"relu"``, ``"leaky_relu"``, ``"abs"``, ``"hard_tanh"``); a custom one is for
# a known output range or shape, such as this one, or ReLU6
# (``PiecewiseLinear([0, 6], [0, 6], 0, 0)``).
plt.show()
