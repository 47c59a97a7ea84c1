"""A Case read back from its folder ranks exactly like the Case it was saved from."""

from __future__ import annotations

import pandas as pd

from aisre.case import load_case, save_case
from aisre.rank import get_ranker

from conftest import build_toy_case


def test_reloaded_case_ranks_the_same(tmp_path):
    """Categorical metric keys after a reload change nothing in detection or ranking, and logs
    stay plain strings that can be filled and edited."""
    case = build_toy_case()
    case.logs = pd.DataFrame({"time": [case.window[0] + 400.0, case.window[0] + 401.0], "entity": ["cart", "cart"],
                              "level": ["ERROR", None], "template": ["timeout <*>", None],
                              "message": ["timeout redis", None], "trace_id": [None, None]})
    back = load_case(save_case(case, tmp_path / "c"))
    assert isinstance(back.metrics["entity"].dtype, pd.CategoricalDtype)
    assert not isinstance(back.logs["level"].dtype, pd.CategoricalDtype)
    before, after = get_ranker("aisre").rank(case), get_ranker("aisre").rank(back)
    assert after.entities() == before.entities() and after.entities()[0] == "cart"
