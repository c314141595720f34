"""One run's machinery, without Locust: what is started, in what order, and what is recorded.

- ``targets``: the reference targets by name and what each claims (``TargetSpec``, ``Claims``);
- ``process``: a child process that dies with its parent, its log, a readiness probe, free ports;
- ``store``: the run's own redis-server;
- ``stack``: store → target instance(s) → fault proxy with one listener per cohort, and their teardown;
- ``timeline``: scenario faults as timed actions on the proxy and the processes;
- ``controller``: the run's phases (connect, send, heal, drain, stop) on a clock;
- ``context``: what a user of the run sees (its slot: user id, recipients, proxy URL, ledger);
- ``distributed``: the master/worker protocol (slots, ledger shipping, flush barrier), transport-free.

May import: ``harness.config``, ``harness.errors``, ``harness.paths``, ``harness.ledger``,
``harness.faults``. Never Locust (``harness.locust_ext`` wires this to Locust) and never the checker.
"""
