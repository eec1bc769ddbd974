# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""The order of the examples in the gallery: from first steps to scaling out."""

ORDER = [
    "plot_quick_start.py",
    "plot_training_diagnostics.py",
    "plot_custom_activation.py",
    "plot_grid_search.py",
    "plot_model_comparison.py",
    "plot_out_of_core.py",
    "plot_dask.py",
    "plot_onnx_export.py",
]


class ExampleOrder:
    """Sort key for ``within_subsection_order``: examples in :data:`ORDER` first, in
    that order, then any others by file name."""

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename):
        if filename in ORDER:
            return (0, ORDER.index(filename), "")
        return (1, 0, filename)

    def __repr__(self):
        return f"<{type(self).__name__}: {ORDER}>"
