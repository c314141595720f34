"""Order anomalies per sender→recipient stream, named after Jepsen's Kafka workload (pure).

Receive order is the receiver's own ledger order (node, index), stamped at the top of the receive handler.
Only first receipts count for order; extra copies are ``duplicated``.

- nonmonotonic (reported as ``reordered``): a first receipt whose seq is lower than one already received.
- skipped: a first receipt that jumped over at least one acknowledged seq not yet received
  (the jumped-over message may arrive later, as a nonmonotonic receipt, or never, as a gap).
- gap: an acknowledged message never received although a higher seq of its stream was: a silent hole
  in the middle of the stream rather than a lost tail.
- duplicate_offsets: a message received at two or more different server offsets (stored twice).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["OrderAnalysis", "analyse_order"]


@dataclass(frozen=True)
class OrderAnalysis:
    nonmonotonic: list[str]
    skipped: list[str]
    gap: list[str]
    duplicate_offsets: list[str]


def analyse_order(messages: pd.DataFrame, good_receipts: pd.DataFrame) -> OrderAnalysis:
    """Find every ordering anomaly; ``messages`` and ``good_receipts`` come from analyse_delivery."""
    empty = OrderAnalysis([], [], [], [])
    if messages.empty:
        return empty
    pair = messages["sender"].astype("string") + "\x1f" + messages["recipient"].astype("string")
    stream_codes, _ = pd.factorize(pair)
    seq = messages["seq"].to_numpy(dtype="float64", na_value=np.nan)
    has_seq = ~np.isnan(seq)
    seq_int = np.nan_to_num(seq).astype(np.int64)
    ids = messages.index.to_numpy()
    width = int(seq_int.max()) + 2 if len(seq_int) else 2
    key = stream_codes.astype(np.int64) * width + seq_int  # orders messages by (stream, seq)

    acked = (messages["outcome"] == "ok").to_numpy() & has_seq
    acked_keys = np.sort(key[acked])

    first = good_receipts.sort_values(["node", "index"], kind="stable").drop_duplicates("code", keep="first")
    codes = first["code"].to_numpy(dtype=np.int64)
    codes = codes[has_seq[codes]]
    nonmonotonic: list[str] = []
    skipped: list[str] = []
    if codes.size:
        stream = stream_codes[codes]
        s = seq_int[codes]
        frame = pd.DataFrame({"stream": stream, "seq": s})
        running_max = frame.groupby("stream", sort=False)["seq"].cummax()
        prev = running_max.groupby(frame["stream"], sort=False).shift(1).fillna(0).to_numpy(dtype=np.int64)
        nonmonotonic = [str(ids[c]) for c in codes[s < prev]]
        # jumped: an acked key in the open interval (stream*width + prev, stream*width + seq)
        low = np.searchsorted(acked_keys, stream * width + prev, side="right")
        high = np.searchsorted(acked_keys, stream * width + s, side="left")
        skipped = [str(ids[c]) for c in codes[(s > prev + 1) & (high > low)]]

    received = np.zeros(len(messages), dtype=bool)
    received[codes] = True
    top = pd.Series(seq_int[codes]).groupby(stream_codes[codes]).max() if codes.size else pd.Series(dtype="int64")
    stream_top = top.reindex(range(int(stream_codes.max()) + 1)).fillna(0).to_numpy(dtype=np.int64)
    gap_mask = acked & ~received & (seq_int < stream_top[stream_codes])
    gap = [str(i) for i in ids[gap_mask]]

    offsets = good_receipts[good_receipts["offset"].notna()]
    distinct = offsets.groupby("code")["offset"].nunique()
    duplicate_offsets = [str(ids[c]) for c in distinct.index[distinct > 1]]
    return OrderAnalysis(nonmonotonic, skipped, gap, duplicate_offsets)
