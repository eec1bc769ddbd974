# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""pytest's configuration for the whole checkout."""

import importlib.util

# --doctest-modules imports every module of sklearn_optlr/, and sklearn_optlr.onnx
# refuses to import without skl2onnx (the onnx extra): without it, that module is not
# collected, as tests/test_onnx.py is skipped.
collect_ignore = [] if importlib.util.find_spec("skl2onnx") else ["sklearn_optlr/onnx.py"]
