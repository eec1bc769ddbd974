# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""Every public name has a numpydoc docstring that numpydoc's validator accepts.

The names checked are ``sklearn_optlr.__all__`` and the public methods and
properties their classes define themselves (not those inherited from
scikit-learn, nor the ``set_*_request`` methods it generates). The examples
themselves run as doctests: pytest collects ``sklearn_optlr/`` with
``--doctest-modules`` (see ``pyproject.toml``).

Ignored checks, as in scikit-learn's own ``test_docstrings.py``:

- everywhere: ``GL01``/``GL02`` (where the summary starts and blank lines
  around it: layout, not content) and ``RT02`` (a Returns entry may name the
  value, as in ``self : OptimalLRRegressor``);
- on methods and properties only: ``ES01`` (extended summary), ``SA01``
  (See Also) and ``EX01`` (Examples): a method is shown in its class's
  example, which every class must have;
- ``GL08`` (no docstring) on a property that the class documents in its
  Attributes section, where numpydoc users read it.
"""

import doctest
import inspect

import pytest

import sklearn_optlr

numpydoc_validate = pytest.importorskip("numpydoc.validate")
from numpydoc.docscrape import ClassDoc  # noqa: E402

IGNORED = {"GL01", "GL02", "RT02"}
IGNORED_IN_MEMBERS = {"ES01", "SA01", "EX01"}

#: Failures known and reported, in files this test does not own. Each entry must
#: still fail exactly as listed (the test says when one is fixed, so the entry
#: goes), and nothing else may fail.
KNOWN_ISSUES = {}


def _public_members(cls):
    for name, member in vars(cls).items():
        if name.startswith("_") and name != "__call__":
            continue
        if isinstance(member, (classmethod, staticmethod)):
            member = member.__func__
        if isinstance(member, property) or (
            inspect.isfunction(member) and member.__module__.startswith("sklearn_optlr")
        ):
            yield name, member


def _public_names():
    for name in sklearn_optlr.__all__:
        obj = getattr(sklearn_optlr, name)
        yield f"sklearn_optlr.{name}", obj, None
        if inspect.isclass(obj):
            for member_name, member in _public_members(obj):
                yield f"sklearn_optlr.{name}.{member_name}", member, obj


PUBLIC_NAMES = list(_public_names())


def _errors(qualified_name, member, owner):
    for code, message in numpydoc_validate.validate(qualified_name)["errors"]:
        if code in IGNORED:
            continue
        if owner is not None and code in IGNORED_IN_MEMBERS:
            continue
        if code == "GL08" and isinstance(member, property):
            attributes = {entry.name for entry in ClassDoc(owner)["Attributes"]}
            if qualified_name.rsplit(".", 1)[1] in attributes:
                continue
        yield code, message


@pytest.mark.parametrize(
    "qualified_name, member, owner", PUBLIC_NAMES, ids=[entry[0] for entry in PUBLIC_NAMES]
)
def test_docstring_is_valid_numpydoc(qualified_name, member, owner):
    errors = list(_errors(qualified_name, member, owner))
    known = KNOWN_ISSUES.get(qualified_name, set())
    unexpected = [f"{code}: {message}" for code, message in errors if code not in known]
    assert not unexpected, f"{qualified_name}:\n" + "\n".join(unexpected)
    fixed = known - {code for code, _ in errors}
    assert not fixed, (
        f"{qualified_name} no longer fails {sorted(fixed)}: update KNOWN_ISSUES in {__file__}."
    )
    if known:
        pytest.xfail(f"known docstring issues {sorted(known)} (see KNOWN_ISSUES)")


@pytest.mark.parametrize("name", sklearn_optlr.__all__)
def test_public_name_has_a_doctest_example(name):
    # EX01 only asks for an Examples section; this asks for code that doctest runs.
    obj = getattr(sklearn_optlr, name)
    tests = doctest.DocTestFinder(recurse=False).find(obj, name)
    assert any(test.examples for test in tests), f"{name} has no doctest example"
