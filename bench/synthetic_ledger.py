"""A synthetic ledger with exactly known anomalies, for the checker benchmark.

~events/3 messages over 1,000 sender→recipient streams (200 users); sends end ok 97 % / info 2 % /
fail 1 %; every ok and half the info sends are received. Injected: 1,000 lost (ok, never received),
500 duplicated (an extra receipt), 100 unexpected (receipts of ids never sent), 300 reordered (adjacent
receipts swapped). String message ids, as real ledgers have.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["EXPECTED", "make_ledger"]

EXPECTED = {"lost": 1000, "duplicated": 500, "unexpected": 100, "reordered": 300}


def make_ledger(events: int, path: str, seed: int = 7) -> dict[str, int]:
    """Write the ledger to ``path`` (Parquet) and return the expected counts."""
    rng = np.random.default_rng(seed)
    streams, users = 1000, 200
    per_stream = max(4, events // 3 // streams)
    n = streams * per_stream
    stream = np.repeat(np.arange(streams), per_stream)
    seq = np.tile(np.arange(1, per_stream + 1), streams)
    sender = stream % users
    recipient = (sender + 1 + stream // users) % users
    t_invoke = (np.tile(np.arange(per_stream), streams) * 1_000_000 + rng.integers(0, 900_000, n)).astype(np.int64)
    t_invoke += 1_800_000_000_000_000_000
    draw = rng.random(n)
    outcome = np.where(draw < 0.97, "ok", np.where(draw < 0.99, "info", "fail"))
    received = (outcome == "ok") | ((outcome == "info") & (rng.random(n) < 0.5))
    ok_idx = np.flatnonzero(outcome == "ok")
    lost = rng.choice(ok_idx, EXPECTED["lost"], replace=False)
    received[lost] = False
    recovered = int(((outcome == "info") & received).sum())

    ids = np.char.add(np.char.add(np.char.add("r:u", sender.astype(str)), np.char.add(">u", recipient.astype(str))),
                      np.char.add("#", seq.astype(str)))
    recv_idx = np.flatnonzero(received)
    t_recv = t_invoke[recv_idx] + 2_000_000
    # reorder: swap receive times of 300 adjacent pairs in one stream (both received, both ok)
    candidates = recv_idx[:-1][(np.diff(recv_idx) == 1) & (stream[recv_idx[:-1]] == stream[recv_idx[1:]])]
    candidates = candidates[(seq[candidates] % 4 == 1)]  # pairs never overlap
    swap = rng.choice(candidates, EXPECTED["reordered"], replace=False)
    pos = np.searchsorted(recv_idx, swap)
    t_recv[pos], t_recv[pos + 1] = t_recv[pos + 1] + 1, t_recv[pos] + 1
    dup_pick = rng.choice(len(recv_idx), EXPECTED["duplicated"], replace=False)
    unexpected_ids = np.char.add("r:ghost#", np.arange(EXPECTED["unexpected"]).astype(str))

    rows_id = np.concatenate([ids, ids, ids[recv_idx], ids[recv_idx][dup_pick], unexpected_ids])
    kinds = np.concatenate([np.full(n, "invoke"), outcome, np.full(len(recv_idx) + EXPECTED["duplicated"]
                                                                   + EXPECTED["unexpected"], "ok")])
    fs = np.concatenate([np.full(2 * n, "send"), np.full(len(recv_idx) + EXPECTED["duplicated"]
                                                         + EXPECTED["unexpected"], "recv")])
    t = np.concatenate([t_invoke, t_invoke + 500_000, t_recv, t_recv[dup_pick] + 3_000_000,
                        t_invoke[:EXPECTED["unexpected"]] + 4_000_000])
    snd = np.concatenate([sender, sender, sender[recv_idx], sender[recv_idx][dup_pick],
                          np.zeros(EXPECTED["unexpected"], dtype=int)])
    rcp = np.concatenate([recipient, recipient, recipient[recv_idx], recipient[recv_idx][dup_pick],
                          rng.integers(0, users, EXPECTED["unexpected"])])
    sq = np.concatenate([seq, seq, seq[recv_idx], seq[recv_idx][dup_pick], np.ones(EXPECTED["unexpected"], int)])
    process = np.where(fs == "recv", rcp, snd)
    order = np.argsort(t, kind="stable")
    m = len(t)
    user_name = np.char.add("u", np.arange(users).astype(str))
    phase_t = [int(t.min()) - 1, int(t.max()) + 1, int(t.max()) + 2, int(t.max()) + 3]
    table = {
        "run_id": ["r"] * (m + users + 4),
        "node": ["local"] * (m + users + 4),
        "index": np.arange(1, m + users + 5),
        "t_ns": np.concatenate([np.full(users, phase_t[0] - 1), [phase_t[0]], t[order], phase_t[1:]]),
        "process": np.concatenate([user_name, ["controller"], user_name[process[order]], ["controller"] * 2, ["node"]]),
        "type": np.concatenate([np.full(users, "event"), ["event"], kinds[order], ["event"] * 3]),
        "f": np.concatenate([np.full(users, "connect"), ["phase"], fs[order], ["phase"] * 3]),
        "msg_id": np.concatenate([np.full(users, None), [None], rows_id[order], [None] * 3]),
        "sender": np.concatenate([np.full(users, None), [None], user_name[snd[order]], [None] * 3]),
        "recipient": np.concatenate([np.full(users, None), [None], user_name[rcp[order]], [None] * 3]),
        "seq": np.concatenate([np.full(users, -1), [-1], sq[order], [-1] * 3]),
        "conn": np.concatenate([np.ones(users, int), [-1], np.where(fs[order] == "recv", 1, -1), [-1] * 3]),
        "offset": [None] * (m + users + 4),
        "error": [None] * (m + users + 4),
        "data": [None] * users + ['{"phase": "start"}'] + [None] * m
                + ['{"phase": "drain_end", "quiescent": false}', '{"phase": "end"}', '{"phase": "node_closed"}'],
    }
    arrays = {k: pa.array(v) for k, v in table.items()}
    for column in ("seq", "conn"):
        values = np.asarray(table[column])
        arrays[column] = pa.array(values, mask=values < 0, type=pa.int64())
    for column in ("msg_id", "sender", "recipient", "process", "type", "f", "run_id", "node"):
        arrays[column] = pa.array(table[column], type=pa.string())
    pq.write_table(pa.table(arrays), path)
    return {**EXPECTED, "recovered": recovered, "events": m + users + 4}
