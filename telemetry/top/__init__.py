"""``yolo-telemetry top``: a live terminal view of running instances.

The package is a client of what the server already serves (``/metrics`` and
``/health``, or a Prometheus that scrapes them). Sources fetch readings, the frame
builder turns successive readings into plain dataclasses, and the views draw them:
a Textual app live, Rich text for ``--once``. Only the views import Rich or Textual
(the ``top`` extra), so the rest runs and is tested on the base install.
"""
