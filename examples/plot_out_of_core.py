"""
==========================================
Out-of-core training with ``partial_fit``
==========================================

When the data does not fit in memory, read it in chunks and call
:meth:`~sklearn_optlr.OptimalLRRegressor.partial_fit` on each. Every call makes
exactly one pass over the chunk it is given, in mini-batches of ``batch_size``
rows, continuing from the current weights; the memory used is that of one
chunk.

Here the "file" is a generator that produces the same chunks every time it is
read, as a file on disk would.
"""

# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

# %%
# A stream of chunks
# ------------------
# Features on very different scales (as raw columns often are) and a target from
# a ReLU unit with noise.
import numpy as np

N_CHUNKS, CHUNK_SIZE, N_FEATURES = 20, 5_000, 30
rng = np.random.default_rng(0)
SCALES = rng.uniform(0.1, 100.0, N_FEATURES)
TRUE_COEF = rng.standard_normal(N_FEATURES) / SCALES


def read_chunks():
    """Yield ``(X, y)`` chunks, the same ones on every pass (like reading a file)."""
    for chunk in range(N_CHUNKS):
        chunk_rng = np.random.default_rng(chunk)
        X = chunk_rng.standard_normal((CHUNK_SIZE, N_FEATURES)) * SCALES + 5.0
        y = np.maximum(X @ TRUE_COEF - 5.0 * TRUE_COEF.sum() + 1.0, 0.0)
        yield X, y + 0.1 * chunk_rng.standard_normal(CHUNK_SIZE)


# %%
# First pass: the scaler
# ----------------------
# On features of very different scales the loss is badly conditioned and any
# gradient method crawls: the optimal rate chooses the best step along the
# gradient, but not the gradient's direction. Standardise first.
# :class:`~sklearn.preprocessing.StandardScaler` learns its statistics
# incrementally too, so one pass over the stream fits it.
from sklearn.preprocessing import StandardScaler

scaler = StandardScaler()
for X_chunk, _ in read_chunks():
    scaler.partial_fit(X_chunk)

# A held-out chunk, made the same way but without noise: its MSE is the distance
# to the true function (the noise variance is 0.01).
held_out_rng = np.random.default_rng(10_000)
X_test = held_out_rng.standard_normal((CHUNK_SIZE, N_FEATURES)) * SCALES + 5.0
y_test = np.maximum(X_test @ TRUE_COEF - 5.0 * TRUE_COEF.sum() + 1.0, 0.0)
X_test = scaler.transform(X_test)

# %%
# Next passes: the model
# ----------------------
# Two passes over the stream, one ``partial_fit`` call per chunk. Each call is
# one epoch in the model's record, so ``n_iter_`` counts chunks and ``t_``
# counts samples.
from sklearn.metrics import mean_squared_error

from sklearn_optlr import OptimalLRRegressor

model = OptimalLRRegressor("relu", batch_size=500, random_state=0)
samples_seen, test_mse = [], []
for stream_pass in range(2):
    for X_chunk, y_chunk in read_chunks():
        model.partial_fit(scaler.transform(X_chunk), y_chunk)
        samples_seen.append(model.t_)
        test_mse.append(mean_squared_error(y_test, model.predict(X_test)))
print(f"{model.n_iter_} partial_fit calls, {model.t_:,} samples seen")
print(f"held-out MSE after the first chunk {test_mse[0]:.2e}, at the end {test_mse[-1]:.2e}")

# %%
# For reference, the same model fitted in memory on all of the data.
all_X = np.vstack([scaler.transform(X_chunk) for X_chunk, _ in read_chunks()])
all_y = np.concatenate([y_chunk for _, y_chunk in read_chunks()])
in_memory = OptimalLRRegressor("relu", batch_size="full", random_state=0).fit(all_X, all_y)
in_memory_mse = mean_squared_error(y_test, in_memory.predict(X_test))
print(f"held-out MSE of a full-batch fit in memory: {in_memory_mse:.2e}")

# %%
# Progress along the stream
# -------------------------
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(6.5, 4), layout="constrained")
ax.plot(samples_seen, test_mse, marker=".", label="partial_fit, chunk by chunk")
ax.axhline(in_memory_mse, color="gray", linestyle="--", label="full batch, in memory")
ax.axvline(N_CHUNKS * CHUNK_SIZE, color="lightgray", linewidth=1)
ax.set(
    xlabel="Samples seen", ylabel="Held-out MSE", yscale="log", title="Two passes over 20 chunks"
)
ax.legend()

# %%
# The error against the truth falls by three orders of magnitude along the
# first pass and ends close to that of the full-batch fit in memory, which needs
# all of the data at once. Each step fits its batch of 500 greedily, noise
# included; the model averages its iterates over the latter part of training,
# which is what removes that noise (see the noise floor of mini-batches in the
# user guide). The averaging window restarts from time to time as training goes
# on, which shows as small steps in the curve.
plt.show()
