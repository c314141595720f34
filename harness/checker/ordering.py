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

from harness.checker.delivery import Receipts

__all__ = ["OrderAnalysis", "analyse_order"]


@dataclass(frozen=True)
class OrderAnalysis:
    nonmonotonic: list[str]
    skipped: list[str]
    gap: list[str]
    duplicate_offsets: list[str]


def _first_receipts_in_order(good: Receipts, n: int) -> np.ndarray:
    """Message rows of first receipts, in receive order (node, then ledger index)."""
    order = good.order
    if order.size > 1 and not bool(np.all(order[1:] >= order[:-1])):
        sort = np.argsort(order, kind="stable")
        codes = good.code[sort]
    else:
        codes = good.code
    first = np.full(n, -1, dtype=np.int64)
    positions = np.arange(codes.size, dtype=np.int64)
    first[codes[::-1]] = positions[::-1]
    keep = np.zeros(codes.size, dtype=bool)
    keep[first[first >= 0]] = True
    return codes[keep]


def _stable_argsort(keys: np.ndarray) -> np.ndarray:
    """``np.argsort(keys, kind="stable")`` for non-negative integer keys, by radix sort: numpy radix-sorts 16-bit
    keys (timsort otherwise), so keys below 2**16 sort as uint16 and keys below 2**32 in two stable passes (low
    half, then high half). 3.3 M receipts over 40 k streams: 0.05 s instead of 0.27 s."""
    if keys.size == 0 or int(keys.min()) < 0 or int(keys.max()) >= 2**32:
        return np.argsort(keys, kind="stable")
    if int(keys.max()) < 2**16:
        return np.argsort(keys.astype(np.uint16), kind="stable")
    by_low = np.argsort((keys & 0xFFFF).astype(np.uint16), kind="stable")
    return by_low[np.argsort((keys[by_low] >> 16).astype(np.uint16), kind="stable")]


def _previous_max(stream: np.ndarray, seq: np.ndarray, width: int) -> np.ndarray:
    """Per receipt (in receive order): the highest seq its stream received before it, 0 for a stream's first.

    One stable sort by stream and a running maximum of ``stream * width + seq``: a later stream's keys are all
    above an earlier one's, so the running maximum never crosses a stream boundary (seq in [0, width)). A
    pandas groupby cummax + shift gives the same, with a hash table over 33 M rows at 100 M events; it is the
    fallback where the keys could overflow or a seq is negative."""
    if seq.size == 0:
        return np.zeros(0, dtype=np.int64)
    if int(seq.min()) < 0 or (int(stream.max()) + 1) * width >= 2**62:
        table = pd.DataFrame({"stream": stream, "seq": seq})
        running_max = table.groupby("stream", sort=False)["seq"].cummax()
        prev: np.ndarray = running_max.groupby(table["stream"], sort=False).shift(1).fillna(0).to_numpy(
            dtype=np.int64)
        return prev
    sort = _stable_argsort(stream)
    ordered = stream[sort]
    key = ordered * width + seq[sort]
    running = np.maximum.accumulate(key)
    del key
    before = np.empty_like(running)
    before[0] = 0
    before[1:] = running[:-1] - ordered[1:] * width
    before[1:][ordered[1:] != ordered[:-1]] = 0  # a stream's first receipt: nothing before it
    del running
    out = np.empty_like(before)
    out[sort] = before
    return out


def analyse_order(messages: pd.DataFrame, good: Receipts) -> OrderAnalysis:
    """Find every ordering anomaly; ``messages`` and ``good`` come from analyse_delivery."""
    n = len(messages)
    if n == 0:
        return OrderAnalysis([], [], [], [])
    senders = messages["sender"].cat.codes.to_numpy(dtype=np.int64)
    recipients = messages["recipient"].cat.codes.to_numpy(dtype=np.int64)
    stream_codes = senders * (int(recipients.max()) + 2) + recipients
    if "room" in messages.columns:  # per room: a member of two rooms sees two streams from one sender
        rooms = messages["room"].cat.codes.to_numpy(dtype=np.int64) + 1
        stream_codes = stream_codes * (int(rooms.max()) + 1) + rooms
    seq = messages["seq"].to_numpy(dtype="float64", na_value=np.nan)
    has_seq = ~np.isnan(seq)
    seq_int = np.nan_to_num(seq).astype(np.int64)
    ids = messages.index
    width = int(seq_int.max()) + 2
    acked = (messages["outcome"] == "ok").to_numpy(dtype=bool) & has_seq
    acked_keys = np.sort(stream_codes[acked] * width + seq_int[acked])

    codes = _first_receipts_in_order(good, n)
    codes = codes[has_seq[codes]]
    nonmonotonic: list[str] = []
    skipped: list[str] = []
    received = np.zeros(n, dtype=bool)
    received[codes] = True
    stream_top = np.zeros(int(stream_codes.max()) + 1, dtype=np.int64)
    if codes.size:
        stream = stream_codes[codes]
        s = seq_int[codes]
        prev = _previous_max(stream, s, width)
        nonmonotonic = [str(i) for i in ids[codes[s < prev]]]
        # jumped: an acked key in the open interval (stream*width + prev, stream*width + seq); only receipts
        # that advance by more than one can have jumped, so only those are looked up
        jump = np.flatnonzero(s > prev + 1)
        low = np.searchsorted(acked_keys, stream[jump] * width + prev[jump], side="right")
        high = np.searchsorted(acked_keys, stream[jump] * width + s[jump], side="left")
        skipped = [str(i) for i in ids[codes[jump[high > low]]]]
        np.maximum.at(stream_top, stream, s)
    gap_mask = acked & ~received & (seq_int < stream_top[stream_codes])
    gap = [str(i) for i in ids[gap_mask]]

    duplicate_offsets: list[str] = []
    if good.offset is not None:
        with_offset = pd.DataFrame({"code": good.code, "offset": good.offset.to_numpy()}).dropna()
        distinct = with_offset.groupby("code")["offset"].nunique()
        duplicate_offsets = [str(i) for i in ids[distinct.index[distinct > 1].to_numpy()]]
    return OrderAnalysis(nonmonotonic, skipped, gap, duplicate_offsets)
