"""Drivers: the client side of a run, one Locust User class per protocol, found by name in ``registry``.

``base.DeliveryUser`` is the protocol-independent half (slots, ids, ledger rows, pending sends); each
protocol module implements its four hooks. Drivers record; they never judge.

May import: Locust, ``harness.run.context``, ``harness.ledger``, protocol client libraries. Never the
checker or the report. (``registry`` alone imports nothing, so the config can name drivers without Locust.)
"""
