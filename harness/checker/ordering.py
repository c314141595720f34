"""Order of first receipts per sender→recipient stream (pure)."""

from __future__ import annotations

import pandas as pd

__all__ = ["reordered_ids"]


def reordered_ids(good_receipts: pd.DataFrame) -> list[str]:
    """Message ids whose first receipt came after a receipt with a higher seq in the same stream.

    Receive order is the receiver's own ledger order (node, index), which is stamped at the top of
    the receive handler; duplicates are ignored here (they are counted as duplicated).
    """
    if good_receipts.empty:
        return []
    first = good_receipts.sort_values(["node", "index"], kind="stable").drop_duplicates("msg_id", keep="first")
    first = first[first["seq"].notna()]
    previous_max = first.groupby(["sender", "recipient"], sort=False)["seq"].transform(
        lambda s: s.cummax().shift(1)
    )
    late = first[first["seq"] < previous_max]
    return [str(m) for m in late["msg_id"]]
