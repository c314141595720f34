"""Jepsen total-queue accounting over sends and receipts (pure, vectorised over integer codes).

Per attempted message id: ``attempts`` (invoke rows), the send's outcome (ok / fail / info; a send with
no completion counts as info), and the receipts by its intended recipient. A receipt of an id that was
never attempted, or by someone other than the intended recipient, is ``unexpected`` (the caller may set
aside never-attempted ones whose sender's records are damaged: see ``checker.analyse``).

Every string column is factorised once into integer codes; the rest is numpy (10M events in seconds).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["Receipts", "DeliveryAnalysis", "analyse_delivery", "column_codes", "sorted_codes", "OUTCOMES",
           "describe_stray", "merge_stray"]

OUTCOMES = np.array(["ok", "fail", "info", "info"], dtype=object)
_NONE = np.iinfo(np.int64).max


@dataclass(frozen=True)
class Receipts:
    """Receipts of attempted messages by their intended recipient (every copy), as aligned arrays."""

    code: np.ndarray
    """Row in ``messages`` of the message received."""
    order: np.ndarray
    """Receive order: (node, ledger index) packed in one int64; smaller = earlier on that node."""
    t_ns: np.ndarray
    conn: np.ndarray
    """Connection epoch (float, NaN when not recorded)."""
    offset: pd.Series | None
    """Server offsets (strings), None when no receipt carries one."""
    nodes: pd.Index | None = None
    """The node names ``order >> 40`` numbers, sorted (so receive order compares the same in any frame)."""


@dataclass(frozen=True)
class DeliveryAnalysis:
    """The message table plus the receipts it was built from."""

    messages: pd.DataFrame
    """One row per attempted msg_id (index): sender, recipient (categoricals), seq, attempts, outcome,
    invoke_ns, ack_ns, receipts, first_recv_ns, first_recv_conn (null when never received)."""
    good: Receipts
    unexpected_ids: list[str]
    """msg_id of each unexpected receipt (one entry per receipt)."""
    unexpected_senders: list[str | None]
    """Aligned with ``unexpected_ids``: the sender the receipt names, when its send was never attempted
    (None for a receipt by the wrong user, whose send is in the ledger)."""
    first_rows: np.ndarray | None = None
    """Per message: the frame position of its first invoke row (for merging partitions)."""
    unexpected_rows: np.ndarray | None = None
    """Aligned with ``unexpected_ids``: the frame position of each unexpected receipt."""
    good_rows: np.ndarray | None = None
    """Aligned with ``good``: the frame position of each good receipt."""
    stray: dict[str, tuple[int, int, str]] = field(default_factory=dict)
    """Per node: send completion rows that match no invoke (an id never invoked, or more completions than
    invokes) as (count, frame position of the first, its msg_id). A send has one completion per invoke: a
    stray one is a damaged record, and it can hide a loss (an acknowledgment moved to another id)."""


def _nullable(values: np.ndarray, missing: np.ndarray) -> pd.arrays.IntegerArray:
    """An Int64 array without a float round trip (ns timestamps exceed float64's exact range)."""
    return pd.arrays.IntegerArray(np.where(missing, 0, values).astype(np.int64), missing.astype(bool))


def _min_by_code(codes: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    out = np.full(size, _NONE, dtype=np.int64)
    np.minimum.at(out, codes, values)
    return out


def _first_row_by_code(codes: np.ndarray, size: int) -> np.ndarray:
    """Position of each code's first row (−1 if none): the reversed assignment keeps the earliest."""
    first = np.full(size, -1, dtype=np.int64)
    positions = np.arange(codes.size, dtype=np.int64)
    first[codes[::-1]] = positions[::-1]
    return first


def _in_appearance_order(raw: np.ndarray[Any, Any]) -> bool:
    """Whether categorical codes (−1 = null) already number their values by first appearance: each code is at
    most one above every code before it. A running maximum (one sequential pass, ~0.05 s at 10 M rows) instead of
    the scatter and gather of a renumbering (~1 s at 10 M rows with 3.3 M distinct ids)."""
    if int(raw[0]) > 0:
        return False
    top = np.maximum.accumulate(raw)
    return bool(np.all(raw[1:] - 1 <= top[:-1]))  # ``- 1``, not ``top + 1``: codes ≥ −1 cannot wrap, maxima can


def column_codes(column: pd.Series) -> tuple[np.ndarray[Any, Any], pd.Index]:
    """``pd.factorize`` of a string column (int64 codes numbered by first appearance, -1 for null; the
    distinct values as an Index in that order), without hashing a row when the column is categorical (as
    ``read_ledger`` reads Parquet): its codes are renumbered by first appearance, a pass over integers."""
    if not isinstance(column.dtype, pd.CategoricalDtype):
        codes, uniques = pd.factorize(column)
        return codes.astype(np.int64, copy=False), pd.Index(uniques)
    raw = column.cat.codes.to_numpy()
    size = len(column.cat.categories)
    if raw.size and _in_appearance_order(raw):  # ``read_ledger``'s msg_id: numbered by first appearance already
        return raw.astype(np.int64), column.cat.categories[:int(raw.max()) + 1]
    first = np.full(size + 1, raw.size, dtype=np.int64)  # slot `size` collects the nulls (code -1)
    slot = np.where(raw < 0, size, raw).astype(np.intp, copy=False)
    first[slot[::-1]] = np.arange(raw.size - 1, -1, -1, dtype=np.int64)
    seen = np.flatnonzero(first[:size] < raw.size)
    by_appearance = seen[np.argsort(first[seen], kind="stable")]
    renumber = np.full(size + 1, -1, dtype=np.int64)
    renumber[by_appearance] = np.arange(by_appearance.size, dtype=np.int64)
    return renumber[slot], column.cat.categories[by_appearance]


def sorted_codes(column: pd.Series) -> tuple[np.ndarray[Any, Any], pd.Index]:
    """Codes of a string column against its distinct values in sorted order (−1 for null): a numbering that
    compares the same in every frame holding those values (``column_codes`` numbers by first appearance)."""
    codes, values = column_codes(column)
    if len(values) < 2:
        return codes, values
    rank = np.argsort(np.argsort(values.astype(str).to_numpy(), kind="stable"), kind="stable")
    remap = np.append(rank, -1).astype(np.int64)  # code −1 (null) stays −1
    return remap[codes], pd.Index(np.sort(values.astype(str).to_numpy()))


def _floats(column: pd.Series, rows: np.ndarray) -> np.ndarray:
    """``column[rows]`` as float64 with NaN for null (an Arrow ``take`` of millions of rows costs more than
    converting the whole column once and indexing it)."""
    if column.dtype.kind not in "iu":  # floats, objects: the general conversion
        values: np.ndarray[Any, Any] = column.to_numpy(dtype="float64", na_value=np.nan)[rows]
        return values
    # integers (conn is null on most rows): the int64 values and the null mask taken at ``rows``, then floats for
    # those rows only (the whole column to float64 first: 0.18 s instead of 0.08 s at 10 M rows)
    out: np.ndarray[Any, Any] = column.to_numpy(dtype=np.int64, na_value=0)[rows].astype(np.float64)
    out[column.isna().to_numpy()[rows]] = np.nan
    return out


def analyse_delivery(frame: pd.DataFrame) -> DeliveryAnalysis:
    """Join sends and receipts by msg_id.

    Row-sized temporaries (10 M rows: 10–80 MB each) are dropped as soon as their message-sized results exist:
    the peak of ``harness check`` is here."""
    f = frame["f"]
    kind = frame["type"]
    send = (f == "send").to_numpy(dtype=bool, na_value=False)
    rank = np.full(len(frame), 3, dtype=np.int8)  # ok 0, fail 1, info 2, anything else 3 (int8: 10 M rows)
    for value, name in enumerate(("ok", "fail", "info")):
        rank[(kind == name).to_numpy(dtype=bool, na_value=False)] = value
    inv_rows = np.flatnonzero(send & (kind == "invoke").to_numpy(dtype=bool, na_value=False))
    comp_rows = np.flatnonzero(send & (rank < 3))
    recv_rows = np.flatnonzero((f == "recv").to_numpy(dtype=bool, na_value=False) & (rank == 0))
    del send

    id_code, id_values = column_codes(frame["msg_id"])  # the one hash over every row (10M rows: ~1.5 s)
    t = frame["t_ns"].to_numpy(dtype=np.int64, na_value=0)
    n_ids = len(id_values)

    # messages = ids with at least one invoke, in the order of their first invoke row (send order: the same
    # order whichever rows of other messages the frame holds, so a partitioned check can restore it);
    # msg_row maps id code -> message row (−1: never attempted)
    inv_codes = id_code[inv_rows]
    attempts_by_id = np.bincount(inv_codes, minlength=n_ids)
    attempted_ids = np.flatnonzero(attempts_by_id)
    first_inv_of_id = _first_row_by_code(inv_codes, n_ids)[attempted_ids]
    if first_inv_of_id.size > 1 and not bool(np.all(first_inv_of_id[1:] > first_inv_of_id[:-1])):
        attempted_ids = attempted_ids[np.argsort(first_inv_of_id, kind="stable")]
    del first_inv_of_id
    msg_row = np.full(n_ids + 1, -1, dtype=np.int64)  # +1: code −1 (no id) maps to the last slot, −1
    msg_row[attempted_ids] = np.arange(attempted_ids.size)
    attempts = attempts_by_id[attempted_ids].astype(np.int64)
    del attempts_by_id
    n = attempted_ids.size

    inv_msg = msg_row[inv_codes]
    del inv_codes
    first_inv = inv_rows[_first_row_by_code(inv_msg, n)]
    invoke_ns = _min_by_code(inv_msg, t[inv_rows], n)
    del inv_msg, inv_rows

    comp_msg = msg_row[id_code[comp_rows]]
    keep = comp_msg >= 0
    orphans = comp_rows[~keep]  # completions of ids never invoked
    comp_rows, comp_msg = comp_rows[keep], comp_msg[keep]
    del keep
    over = np.bincount(comp_msg, minlength=n) - attempts  # more completions than invokes
    over_msgs = np.flatnonzero(over > 0)
    over_rows = comp_rows[_first_row_by_code(comp_msg, n)[over_msgs]] if over_msgs.size else over_msgs
    stray = _stray_by_node(frame, orphans, over_rows, over[over_msgs])
    del over, over_msgs, over_rows
    comp_rank = rank[comp_rows]
    del rank
    best = np.full(n, 3, dtype=np.int64)
    np.minimum.at(best, comp_msg, comp_rank.astype(np.int64))
    ok_rows = comp_rank == 0
    ack_ns = _min_by_code(comp_msg[ok_rows], t[comp_rows[ok_rows]], n)
    del comp_msg, comp_rows, comp_rank, ok_rows

    r_msg = msg_row[id_code[recv_rows]]
    del id_code, msg_row
    # recipients: one code space for the sends' intended recipients and the receivers
    rcp_codes, rcp_values = column_codes(frame["recipient"].take(np.concatenate([first_inv, recv_rows])))
    msg_rcp, receiver = rcp_codes[:first_inv.size], rcp_codes[first_inv.size:]
    intended = np.where(r_msg >= 0, msg_rcp[np.maximum(r_msg, 0)] if n else -2, -2)
    good_mask = (r_msg >= 0) & (receiver == intended) & (intended >= 0)
    del intended, receiver
    good_rows = recv_rows[good_mask]
    good_msg = r_msg[good_mask]
    unexpected_rows = recv_rows[~good_mask]
    never_attempted = r_msg[~good_mask] < 0
    del recv_rows, r_msg, good_mask

    receipts = np.bincount(good_msg, minlength=n).astype(np.int64)
    g_t = t[good_rows]
    del t
    first_recv_ns = _min_by_code(good_msg, g_t, n)
    conn = _floats(frame["conn"], good_rows)
    at_first = g_t == first_recv_ns[good_msg]
    first_conn = np.full(n, np.nan)
    first_conn[good_msg[at_first][::-1]] = conn[at_first][::-1]
    del at_first

    node_code, node_names = sorted_codes(frame["node"].take(good_rows))
    order = (node_code << 40) | frame["index"].to_numpy(dtype=np.int64, na_value=0)[good_rows]
    del node_code
    offsets = None
    if "offset" in frame and frame["offset"].notna().any():  # most ledgers carry none: no 10 M-row take
        offsets = frame["offset"].iloc[good_rows]
        if not offsets.notna().any():
            offsets = None

    ids = pd.Index(id_values[attempted_ids], name="msg_id")
    del id_values, attempted_ids
    senders, snd_values = column_codes(frame["sender"].take(first_inv))
    recipients = msg_rcp
    seq = _floats(frame["seq"], first_inv)
    # a column with no room at all (most ledgers: an empty categorical) needs no 3.3 M-row take to object values
    rooms = (frame["room"].take(first_inv).to_numpy() if "room" in frame.columns and frame["room"].notna().any()
             else None)
    messages = pd.DataFrame(
        {
            "sender": pd.Categorical.from_codes(senders, categories=pd.Index(snd_values)),
            "recipient": pd.Categorical.from_codes(recipients, categories=pd.Index(rcp_values)),
            "seq": _nullable(np.nan_to_num(seq).astype(np.int64), np.isnan(seq)),
            "attempts": attempts,
            "outcome": pd.Categorical.from_codes(np.minimum(best, 2), categories=["ok", "fail", "info"]),
            "invoke_ns": invoke_ns,
            "ack_ns": _nullable(ack_ns, ack_ns == _NONE),
            "receipts": receipts,
            "first_recv_ns": _nullable(first_recv_ns, first_recv_ns == _NONE),
            "first_recv_conn": _nullable(np.nan_to_num(first_conn).astype(np.int64), np.isnan(first_conn)),
        },
        index=ids,
        copy=False,  # fresh arrays, owned by the table: no consolidating copy of 3.3 M-row columns
    )
    if rooms is not None and pd.notna(rooms).any():  # a room send's stream is sender → room → member
        messages["room"] = pd.Categorical(pd.array(rooms, dtype="string"))
    good = Receipts(good_msg, order, g_t, conn, offsets, node_names)
    unexpected_ids = [str(v) for v in frame["msg_id"].iloc[unexpected_rows]]
    named = frame["sender"].take(unexpected_rows).astype(object).tolist()
    unexpected_senders = [str(who) if missing and isinstance(who, str) else None
                          for who, missing in zip(named, never_attempted, strict=True)]
    return DeliveryAnalysis(messages, good, unexpected_ids, unexpected_senders, first_inv, unexpected_rows,
                            good_rows, stray)


def _stray_by_node(frame: pd.DataFrame, orphans: np.ndarray, over_rows: np.ndarray,
                   over_counts: np.ndarray) -> dict[str, tuple[int, int, str]]:
    """``DeliveryAnalysis.stray`` from the orphan completion rows and, per over-completed message, its first
    completion row and how many completions too many it has (both empty on a sound ledger: nothing to take)."""
    if not orphans.size and not over_rows.size:
        return {}
    rows = np.concatenate([orphans, over_rows]).astype(np.int64)
    counts = np.concatenate([np.ones(orphans.size, dtype=np.int64), over_counts.astype(np.int64)])
    order = np.argsort(rows, kind="stable")
    rows, counts = rows[order], counts[order]
    nodes = frame["node"].take(rows).astype(object).to_numpy()
    ids = frame["msg_id"].take(rows).astype(object).to_numpy()
    out: dict[str, tuple[int, int, str]] = {}
    for node, row, count, msg_id in zip(nodes, rows, counts, ids, strict=True):
        key = str(node) if isinstance(node, str) else "(no node)"
        seen, first, first_id = out.get(key, (0, int(row), str(msg_id)))
        out[key] = (seen + int(count), first, first_id)
    return out


def merge_stray(parts: list[dict[str, tuple[int, int, str]]]) -> dict[str, tuple[int, int, str]]:
    """Stray completions of several partitions as one (counts added, the earliest first row kept; rows are
    positions in the whole ledger)."""
    out: dict[str, tuple[int, int, str]] = {}
    for part in parts:
        for node, (count, row, msg_id) in part.items():
            seen, first, first_id = out.get(node, (0, row, msg_id))
            out[node] = (seen + count, *((row, msg_id) if row < first else (first, first_id)))
    return out


def describe_stray(stray: dict[str, tuple[int, int, str]]) -> dict[str, str]:
    """A damaged-node reason per node with stray completions (``DeliveryAnalysis.stray``)."""
    return {node: f"{count} send completion row(s) match no invoke (an id never invoked, or a second completion; "
                  f"the first: {msg_id!r})" for node, (count, _, msg_id) in sorted(stray.items())}
