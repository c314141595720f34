"""A synthetic ledger with exactly known anomalies, for the checker benchmark.

~events/3 messages over 1,000 sender→recipient streams (200 users); sends end ok 97 % / info 2 % /
fail 1 %; every ok and half the info sends are received. Injected: 1,000 lost (ok, never received),
500 duplicated (an extra receipt), 100 unexpected (receipts of ids never sent), 300 reordered (adjacent
receipts swapped). String message ids, as real ledgers have.

Written in chunks of ``chunk_ticks`` send ticks (each chunk one Parquet row group, ~3 rows per message), so
a 100 M-event ledger never has to be held in memory: the injected anomalies are split over the chunks in
exact, known numbers. Within a chunk rows are in time order; a chunk's last receipts (2–4 ms after their
send) may be later than the next chunk's first sends, which nothing judged depends on (order is judged per
stream, by ledger index, and a chunk ends on a tick boundary that no swapped pair crosses).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

__all__ = ["EXPECTED", "make_ledger"]

EXPECTED = {"lost": 1000, "duplicated": 500, "unexpected": 100, "reordered": 300}

STREAMS, USERS = 1000, 200
BASE_NS = 1_800_000_000_000_000_000

SCHEMA = pa.schema([("run_id", pa.string()), ("node", pa.string()), ("index", pa.int64()), ("t_ns", pa.int64()),
                    ("process", pa.string()), ("type", pa.string()), ("f", pa.string()), ("msg_id", pa.string()),
                    ("sender", pa.string()), ("recipient", pa.string()), ("seq", pa.int64()), ("conn", pa.int64()),
                    ("offset", pa.string()), ("error", pa.string()), ("data", pa.string())])


def _split(total: int, parts: int) -> list[int]:
    """``total`` spread over ``parts`` as evenly as integers allow."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def _table(columns: dict[str, Any], rows: int) -> pa.Table:
    arrays = []
    for field in SCHEMA:
        value = columns.get(field.name)
        if value is None:
            arrays.append(pa.nulls(rows, field.type))
        elif isinstance(value, pa.Array):
            arrays.append(value.cast(field.type))
        elif field.type == pa.int64():
            values = np.asarray(value, dtype=np.int64)
            arrays.append(pa.array(values, mask=values < 0, type=pa.int64()))
        else:
            arrays.append(pa.array(value, type=field.type))
    return pa.Table.from_arrays(arrays, schema=SCHEMA)


def make_ledger(events: int, path: str, seed: int = 7, chunk_ticks: int = 1000) -> dict[str, int]:
    """Write the ledger to ``path`` (Parquet) and return the expected counts."""
    rng = np.random.default_rng(seed)
    per_stream = max(4, events // 3 // STREAMS)
    chunk_ticks = max(4, chunk_ticks - chunk_ticks % 4)  # a swapped pair (seq 4k+1, 4k+2) never spans two chunks
    starts = list(range(0, per_stream, chunk_ticks))
    chunks = len(starts)
    lost_n, dup_n, re_n = (_split(EXPECTED[k], chunks) for k in ("lost", "duplicated", "reordered"))
    streams = np.arange(STREAMS)
    s_sender = streams % USERS
    s_recipient = (s_sender + 1 + streams // USERS) % USERS
    user_name = np.char.add("u", np.arange(USERS).astype(str))
    names = pa.array(user_name)
    prefix = pa.array(np.char.add(np.char.add(np.char.add("r:u", s_sender.astype(str)), ">u"),
                                  np.char.add(s_recipient.astype(str), "#")))
    written = 0
    recovered = 0
    t_max = 0
    with pq.ParquetWriter(path, SCHEMA) as writer:
        # users' connects and the start phase come first
        head = USERS + 1
        writer.write_table(_table({
            "run_id": ["r"] * head, "node": ["local"] * head, "index": np.arange(1, head + 1),
            "t_ns": np.full(head, BASE_NS - 2), "process": list(user_name) + ["controller"],
            "type": ["event"] * head, "f": ["connect"] * USERS + ["phase"],
            "seq": np.full(head, -1), "conn": np.array([1] * USERS + [-1]),
            "data": [None] * USERS + ['{"phase": "start"}']}, head))
        written = head
        for c, first_tick in enumerate(starts):
            ticks = min(chunk_ticks, per_stream - first_tick)
            n = STREAMS * ticks
            stream = np.repeat(streams, ticks)
            seq = np.tile(np.arange(first_tick + 1, first_tick + ticks + 1), STREAMS)
            sender, recipient = s_sender[stream], s_recipient[stream]
            t_invoke = (np.tile(np.arange(first_tick, first_tick + ticks), STREAMS) * 1_000_000
                        + rng.integers(0, 900_000, n)).astype(np.int64) + BASE_NS
            draw = rng.random(n)
            outcome = np.where(draw < 0.97, 0, np.where(draw < 0.99, 2, 1))  # 0 ok, 1 fail, 2 info
            received = (outcome == 0) | ((outcome == 2) & (rng.random(n) < 0.5))
            lost = rng.choice(np.flatnonzero(outcome == 0), lost_n[c], replace=False)
            received[lost] = False
            recovered += int(((outcome == 2) & received).sum())
            ids = pc.binary_join_element_wise(prefix.take(pa.array(stream)), pa.array(seq).cast(pa.string()), "")
            recv_idx = np.flatnonzero(received)
            t_recv = t_invoke[recv_idx] + 2_000_000
            # reorder: swap receive times of adjacent pairs in one stream (both received), pairs never overlap
            candidates = recv_idx[:-1][(np.diff(recv_idx) == 1) & (stream[recv_idx[:-1]] == stream[recv_idx[1:]])]
            candidates = candidates[(seq[candidates] % 4 == 1)]
            swap = rng.choice(candidates, re_n[c], replace=False)
            pos = np.searchsorted(recv_idx, swap)
            t_recv[pos], t_recv[pos + 1] = t_recv[pos + 1] + 1, t_recv[pos] + 1
            dup_pick = rng.choice(len(recv_idx), dup_n[c], replace=False)
            ghosts = EXPECTED["unexpected"] if c == 0 else 0
            g = min(ghosts, n)
            id_rows = np.concatenate([np.arange(n), np.arange(n), recv_idx, recv_idx[dup_pick]])
            kinds = np.concatenate([np.full(n, 3), outcome, np.zeros(len(recv_idx) + dup_n[c] + g, dtype=np.int64)])
            is_recv = np.concatenate([np.zeros(2 * n, dtype=bool), np.ones(len(recv_idx) + dup_n[c] + g, dtype=bool)])
            t = np.concatenate([t_invoke, t_invoke + 500_000, t_recv, t_recv[dup_pick] + 3_000_000,
                                t_invoke[:g] + 4_000_000])
            snd = np.concatenate([sender[id_rows], np.zeros(g, dtype=np.int64)])
            rcp = np.concatenate([recipient[id_rows], rng.integers(0, USERS, g)])
            sq = np.concatenate([seq[id_rows], np.ones(g, dtype=np.int64)])
            order = np.argsort(t, kind="stable")
            m = t.size
            msg_ids = ids.take(pa.array(id_rows))
            if g:
                msg_ids = pa.concat_arrays([msg_ids, pa.array([f"r:ghost#{i}" for i in range(g)])])
            process = np.where(is_recv, rcp, snd)
            writer.write_table(_table({
                "run_id": pa.array(np.full(m, "r")), "node": pa.array(np.full(m, "local")),
                "index": np.arange(written + 1, written + m + 1), "t_ns": t[order],
                "process": names.take(pa.array(process[order])),
                "type": pa.array(np.array(["ok", "fail", "info", "invoke"])[kinds[order]]),
                "f": pa.array(np.where(is_recv[order], "recv", "send")),
                "msg_id": msg_ids.take(pa.array(order)), "sender": names.take(pa.array(snd[order])),
                "recipient": names.take(pa.array(rcp[order])), "seq": sq[order],
                "conn": np.where(is_recv[order], 1, -1)}, m))
            written += m
            t_max = max(t_max, int(t.max()))
        tail = 3
        writer.write_table(_table({
            "run_id": ["r"] * tail, "node": ["local"] * tail, "index": np.arange(written + 1, written + tail + 1),
            "t_ns": np.arange(t_max + 1, t_max + tail + 1), "process": ["controller", "controller", "node"],
            "type": ["event"] * tail, "f": ["phase"] * tail, "seq": np.full(tail, -1), "conn": np.full(tail, -1),
            "data": ['{"phase": "drain_end", "quiescent": false}', '{"phase": "end"}', '{"phase": "node_closed"}']},
            tail))
        written += tail
    return {**EXPECTED, "recovered": recovered, "events": written}
