"""Everything that plugs the harness into Locust, and the only harness package besides ``drivers``
that imports Locust.

- ``plugin``: command-line flags and event listeners (init, test_start, test_stop, quitting) that start
  the stack, run the controller and write the verdict;
- ``web_ui``: the Delivery tab and the fault routes on Locust's web UI;
- ``distributed``: ``harness.run.distributed`` over Locust's master/worker messages.

Named ``locust_ext`` rather than ``locust``: Locust puts a locustfile's folder on ``sys.path``, where a
package called ``locust`` would shadow Locust itself.

May import anything in ``harness`` and Locust. Nothing in ``harness`` imports it except
``harness/locustfile.py`` (what users pass to ``locust -f``).
"""
