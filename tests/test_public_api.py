"""The public API: ``aisre.__all__`` is complete, sorted, and every name resolves."""

from __future__ import annotations

import aisre


def test_all_is_sorted_and_unique():
    """__all__ is sorted (case-sensitive, as Python sorts) and has no repeats."""
    assert aisre.__all__ == sorted(set(aisre.__all__))


def test_every_exported_name_resolves():
    """Every name in __all__ is an attribute of the package (lazy ones load on access)."""
    missing = [name for name in aisre.__all__ if getattr(aisre, name, None) is None]
    assert missing == []


def test_all_is_complete():
    """Every public, non-module attribute defined at the top level is in __all__."""
    import types

    public = {n for n, v in vars(aisre).items() if not n.startswith("_") and not isinstance(v, types.ModuleType)}
    public -= {"annotations", "import_module", "Any"}
    assert public <= set(aisre.__all__), sorted(public - set(aisre.__all__))


def test_unknown_attribute_is_an_attribute_error():
    """A name the package lacks raises AttributeError, not KeyError."""
    try:
        aisre.no_such_thing  # noqa: B018
    except AttributeError as exc:
        assert "no_such_thing" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("expected AttributeError")
