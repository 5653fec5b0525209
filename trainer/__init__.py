"""trainer service: a CSV (or synthetic data) in, ``model.onnx`` and ``config.json`` out.

``cli`` is the ``datasentinel-train`` command, ``settings`` its flags, ``errors`` what it reports
in one line, and ``pipeline`` the run from start to end, through one room per step: ``data``
(reading and checking the table), ``detector`` (what a row's score is), ``fitting`` (training
and the threshold), ``export`` (the ONNX file and its config) and ``report`` (metrics, plots and
the summary)."""
