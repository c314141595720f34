"""delivery-harness: proves whether a realtime server delivers every message across faults, at load.

The chain, one package per job (each package's docstring says what it may import; tests/test_layout.py
checks it):

    drivers/ ──rows──▶ ledger/ ──▶ checker/ ──verdict──▶ report/ ──▶ gate.py
       ▲                  ▲
    run/ (stack, store, targets, timeline, controller, distributed protocol) ──▶ faults/ (proxy + client)
       ▲
    locust_ext/ (the only glue to Locust's events, web UI and master/worker messages)
    explore/ (harness explore: generated fault schedules, each an ordinary run; shrinking)

At the top, the edges: ``cli`` (the ``harness`` command), ``console`` (what ``harness run`` shows while it
runs), ``config`` (scenario files), ``gate``, ``errors``, ``paths``, ``scenario_reference`` (docs/scenario.md
and ``harness schema``), ``scaffold`` (``harness new-target``), ``locustfile`` (what ``locust -f`` loads)
and ``pytest_plugin``.
Systems under test live in ``targets/`` and never import this package.
"""
