"""Sources of real data: dataset loaders behind one registry, and ingestion of live formats.

``load(path)`` detects the layout and yields :class:`aisre.case.Case` objects; ``formats()``
lists the layouts (``case``, ``rcaeval``, ``rcd``, ``nezha``, ``petshop``).
"""

from __future__ import annotations

from aisre.datasets import case_folder as _case_folder  # noqa: F401  (registers "case")
from aisre.datasets import rcd as _rcd  # noqa: F401  (registers "rcd")
from aisre.datasets import petshop as _petshop  # noqa: F401  (registers "petshop")
from aisre.datasets import nezha as _nezha  # noqa: F401
from aisre.datasets import rcaeval as _rcaeval  # noqa: F401  (registers "rcaeval")
from aisre.datasets.registry import Loader, detect, formats, get, load, register

__all__ = ["Loader", "detect", "formats", "get", "load", "register"]
