"""A ledger checked in partitions (pure): one partition's delivery at a time, merged, judged once.

A big ledger is split (by ``harness.ledger.partition``) into a *global* frame, every row that is not a send or a
receipt (phases, connects, faults, health, node, process_exit: small), and K partitions of the send and receipt
rows, keyed by message id: every row of one ``msg_id`` is in one partition, so a message's attempts, outcome and
every receipt of it (by its recipient or by anyone else) are whole there, and whether a receipt is good,
duplicated or unexpected is decided inside its partition exactly as in one pass. Each row carries ``_row``, its
position in the whole ledger.

``analyse_part`` keeps what the rest of the check needs, compactly: the message table, each good receipt's
message and receive order (node, index), the unexpected receipts, and counts over the partition's rows
(``RowTotals``). ``merge_parts`` concatenates them in the order one pass produces (messages by first invoke row,
receipts and unexpected receipts by ledger row, categories by first appearance), so that
``harness.checker.analyse_merged`` over the merged table and the global frame gives the Analysis ``analyse``
gives over the whole ledger: order per stream is judged on the merged receipts, loss and latency on the merged
messages (exact latencies, not percentiles of percentiles). Rooms need every member's rows at once: ledgers with
room rows are never partitioned (checked in one pass).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from harness.checker.base import RowTotals
from harness.checker.delivery import Receipts, analyse_delivery, column_codes, merge_stray

__all__ = ["PartOutcome", "Merged", "analyse_part", "merge_parts"]

_INT = ("attempts", "invoke_ns", "receipts")
_NULLABLE = ("seq", "ack_ns", "first_recv_ns", "first_recv_conn")


@dataclass
class PartOutcome:
    """One partition's delivery, as plain arrays (copies: the partition's frames can be freed)."""

    columns: dict[str, np.ndarray[Any, Any]]
    """Per message: ``_row`` (ledger row of its first invoke), the int columns, ``<name>`` and ``<name>_na`` for
    the nullable ones, ``sender`` / ``recipient`` / ``outcome`` codes."""
    categories: dict[str, pd.Index]
    ids: pd.Index
    receipt_code: np.ndarray[Any, Any]
    receipt_row: np.ndarray[Any, Any]
    receipt_node: np.ndarray[Any, Any]
    """Index into ``nodes`` (sorted names)."""
    receipt_index: np.ndarray[Any, Any]
    nodes: pd.Index
    offsets: np.ndarray[Any, Any] | None
    unexpected_rows: np.ndarray[Any, Any]
    unexpected_ids: list[str]
    unexpected_senders: list[str | None]
    nodes_seen: frozenset[str]
    first_t_ns: int | None
    sends_made: int
    acks_timed_out: int
    receivers: dict[str, tuple[int, str]] = field(default_factory=dict)
    """Per recipient of a receipt: (ledger row, node) of its first receipt here."""
    stray: dict[str, tuple[int, int, str]] = field(default_factory=dict)
    """``DeliveryAnalysis.stray`` with ledger rows."""


@dataclass(frozen=True)
class Merged:
    """The partitions' delivery tables as one (``messages`` and ``good`` as ``analyse_delivery`` gives them)."""

    messages: pd.DataFrame
    good: Receipts
    """``code`` and ``order`` (and ``offset``) only: ``t_ns`` and ``conn`` are not kept (empty), as nothing after
    delivery reads them."""
    unexpected_ids: list[str]
    unexpected_senders: list[str | None]
    totals: RowTotals


def analyse_part(frame: pd.DataFrame) -> PartOutcome:
    """Delivery over one partition (its send and receipt rows, each with ``_row``)."""
    if "room" in frame.columns and frame["room"].notna().any():
        raise ValueError("a partition holds room rows: room ledgers must be checked in one pass")
    d = analyse_delivery(frame)
    rows = frame["_row"].to_numpy(dtype=np.int64)
    m = d.messages
    columns: dict[str, np.ndarray[Any, Any]] = {"_row": _compact(rows[d.first_rows]) if d.first_rows is not None
                                                 else np.zeros(0, np.int64)}
    for name in _INT:
        columns[name] = _compact(m[name].to_numpy(dtype=np.int64))
    for name in _NULLABLE:
        values = m[name].array
        columns[name] = _compact(values.to_numpy(dtype=np.int64, na_value=0))
        columns[name + "_na"] = np.array(values.isna(), copy=True)
    categories = {}
    for name in ("sender", "recipient", "outcome"):
        columns[name] = np.array(m[name].cat.codes.to_numpy(), copy=True)  # int8 / int16 codes
        categories[name] = m[name].cat.categories
    good = d.good
    receipt_rows = rows[d.good_rows] if d.good_rows is not None else np.zeros(0, np.int64)
    kind = frame["type"]
    f = frame["f"]
    send = (f == "send").to_numpy(dtype=bool, na_value=False)
    info = send & (kind == "info").to_numpy(dtype=bool, na_value=False)
    timed_out = 0
    if info.any() and "error" in frame.columns:
        errors = frame.loc[info, "error"].astype("string")
        timed_out = int(errors.str.startswith("no ack within", na=False).sum())
    recv = (f == "recv").to_numpy(dtype=bool, na_value=False)
    receivers: dict[str, tuple[int, str]] = {}
    recv_rows = np.flatnonzero(recv)
    if recv_rows.size:  # per recipient, the node of its first receipt that names one (groupby.first skips nulls)
        user, users = column_codes(frame["recipient"].take(recv_rows))
        node, nodes = column_codes(frame["node"].take(recv_rows))
        valid = np.flatnonzero((user >= 0) & (node >= 0))
        first = np.full(len(users), -1, dtype=np.int64)
        first[user[valid][::-1]] = valid[::-1]
        receivers = {str(users[u]): (int(rows[recv_rows[at]]), str(nodes[node[at]]))
                     for u, at in enumerate(first) if at >= 0}
    t = frame["t_ns"]
    return PartOutcome(
        columns=columns, categories=categories, ids=m.index,
        receipt_code=_compact(good.code), receipt_row=_compact(receipt_rows),
        receipt_node=_compact(good.order >> 40), receipt_index=_compact(good.order & ((1 << 40) - 1)),
        nodes=good.nodes if good.nodes is not None else pd.Index([]),
        offsets=None if good.offset is None else good.offset.to_numpy(dtype=object, na_value=None),
        unexpected_rows=rows[d.unexpected_rows] if d.unexpected_rows is not None else np.zeros(0, np.int64),
        unexpected_ids=d.unexpected_ids, unexpected_senders=d.unexpected_senders,
        nodes_seen=frozenset(str(n) for n in frame["node"].dropna().unique()),
        first_t_ns=None if frame.empty else int(t.min()),
        sends_made=int((send & (kind == "invoke").to_numpy(dtype=bool, na_value=False)).sum()),
        acks_timed_out=timed_out, receivers=receivers,
        stray={node: (count, int(rows[at]), msg_id) for node, (count, at, msg_id) in d.stray.items()})


def _compact(values: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """A copy in the narrowest integer type that holds every value (the merge widens them back to int64): what
    the partitions keep until the merge is ~40 bytes per message instead of ~100."""
    if values.size == 0:
        return np.zeros(0, dtype=np.int8)
    low, high = int(values.min()), int(values.max())
    for kind in (np.int8, np.int16, np.int32):
        info = np.iinfo(kind)
        if info.min <= low and high <= info.max:
            return values.astype(kind)
    return np.array(values, dtype=np.int64, copy=True)


def _wide(values: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return values.astype(np.int64, copy=False)


def _renumber(codes: np.ndarray[Any, Any], categories: pd.Index) -> pd.Categorical:
    """A categorical whose categories are in order of first appearance in ``codes`` (as ``column_codes``)."""
    size = len(categories)
    first = np.full(size, codes.size, dtype=np.int64)
    valid = codes >= 0
    positions = np.flatnonzero(valid)
    first[codes[valid][::-1]] = positions[::-1]
    seen = np.flatnonzero(first < codes.size)
    by_appearance = seen[np.argsort(first[seen], kind="stable")]
    remap = np.full(size + 1, -1, dtype=np.int64)
    remap[by_appearance] = np.arange(by_appearance.size)
    return pd.Categorical.from_codes(remap[codes], categories=pd.Index(categories[by_appearance]))


def merge_parts(parts: Iterable[PartOutcome], release: Callable[[], None] = lambda: None) -> Merged:
    """One delivery table from every partition's, in one pass's order. The parts' arrays are released as they are
    merged (the list is emptied), biggest first, and ``release`` is called after each step (the caller's hook to
    hand freed memory back to the system: Arrow's pool and malloc keep it otherwise)."""
    parts = list(parts)
    sizes = [p.columns["_row"].size for p in parts]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    first_rows = np.concatenate([_wide(p.columns.pop("_row")) for p in parts]) if parts else np.zeros(0, np.int64)
    perm = np.argsort(first_rows, kind="stable")  # K sorted runs: a merge
    del first_rows

    # receipts first (their message codes need the new positions), then the ids, then column by column
    where = np.empty(perm.size, dtype=np.int64)
    where[perm] = np.arange(perm.size, dtype=np.int64)
    code = np.concatenate([where[_wide(p.receipt_code) + offsets[i]] for i, p in enumerate(parts)]) if parts else \
        np.zeros(0, np.int64)
    del where
    nodes = pd.Index(sorted({str(n) for p in parts for n in p.nodes}))
    node = np.concatenate([np.append(nodes.get_indexer(p.nodes).astype(np.int64), -1)[_wide(p.receipt_node)]
                           for p in parts]) if parts else np.zeros(0, np.int64)  # −1 (no node) stays −1
    order = (node << 40) | (np.concatenate([_wide(p.receipt_index) for p in parts]) if parts else node)
    del node
    rows = np.concatenate([_wide(p.receipt_row) for p in parts]) if parts else np.zeros(0, np.int64)
    offset = None
    if any(p.offsets is not None for p in parts):
        offset = np.concatenate([p.offsets if p.offsets is not None else np.full(p.receipt_code.size, None)
                                 for p in parts])
    for p in parts:
        p.receipt_code = p.receipt_row = p.receipt_node = p.receipt_index = np.zeros(0, np.int8)
        p.offsets = None
    by_row = np.argsort(rows, kind="stable")  # one pass lists receipts in ledger order
    del rows
    good = Receipts(code[by_row], order[by_row], np.zeros(0, np.int64), np.zeros(0), None if offset is None else
                    pd.Series(offset[by_row], dtype=object), nodes)
    del code, order, offset, by_row
    release()

    ids = pd.Index(pd.concat([pd.Series(p.ids.array) for p in parts], ignore_index=True).array
                   if parts else pd.array([], dtype="string"), name="msg_id")
    for p in parts:
        p.ids = pd.Index([])
    ids = ids.take(perm)
    release()

    def column(name: str) -> np.ndarray[Any, Any]:
        if not parts:
            return np.zeros(0, np.int64)
        pieces = [p.columns.pop(name) for p in parts]
        if pieces[0].dtype != bool:
            kind = np.result_type(*pieces)
            pieces = [piece.astype(kind, copy=False) for piece in pieces]
        joined = np.concatenate(pieces)
        del pieces
        out = joined[perm]
        del joined
        return out if out.dtype == bool else out.astype(np.int64, copy=False)

    data: dict[str, Any] = {}
    for name in ("sender", "recipient"):
        values = (parts[0].categories[name].append([p.categories[name] for p in parts[1:]]).unique() if parts
                  else pd.Index([], dtype=object))
        joined = np.concatenate([np.append(values.get_indexer(p.categories[name]), -1)[_wide(p.columns.pop(name))]
                                 for p in parts]) if parts else np.zeros(0, np.int64)  # code −1 stays −1
        data[name] = _renumber(joined[perm], pd.Index(values))
        del joined
    data["seq"] = pd.arrays.IntegerArray(column("seq"), column("seq_na"))
    data["attempts"] = column("attempts")
    outcome = column("outcome").astype(np.int8)  # every part's categories are ok, fail, info
    data["outcome"] = pd.Categorical.from_codes(outcome, categories=["ok", "fail", "info"])
    del outcome
    data["invoke_ns"] = column("invoke_ns")
    data["ack_ns"] = pd.arrays.IntegerArray(column("ack_ns"), column("ack_ns_na"))
    data["receipts"] = column("receipts")
    for name in ("first_recv_ns", "first_recv_conn"):
        data[name] = pd.arrays.IntegerArray(column(name), column(name + "_na"))
    perm = np.zeros(0, dtype=np.int64)  # released (the closure above reads it)
    messages = pd.DataFrame(data, index=ids, copy=False)  # no copy: one block per column, as built
    messages.index.name = "msg_id"
    del ids, data
    release()

    u_rows = np.concatenate([p.unexpected_rows for p in parts]) if parts else np.zeros(0, np.int64)
    u_ids = [i for p in parts for i in p.unexpected_ids]
    u_senders = [s for p in parts for s in p.unexpected_senders]
    u_order = np.argsort(u_rows, kind="stable")
    receivers: dict[str, tuple[int, str]] = {}
    for p in parts:
        for user, (row, where_node) in p.receivers.items():
            if user not in receivers or row < receivers[user][0]:
                receivers[user] = (row, where_node)
    firsts = [p.first_t_ns for p in parts if p.first_t_ns is not None]
    totals = RowTotals(nodes=frozenset(n for p in parts for n in p.nodes_seen),
                       first_t_ns=min(firsts) if firsts else None,
                       sends_made=sum(p.sends_made for p in parts),
                       acks_timed_out=sum(p.acks_timed_out for p in parts),
                       receivers={u: n for u, (_, n) in receivers.items()},
                       stray=merge_stray([p.stray for p in parts]))
    parts.clear()
    return Merged(messages, good, [u_ids[i] for i in u_order], [u_senders[i] for i in u_order], totals)
