"""producer service: streams feature vectors to the engine over ScoreStream and reports results.

``datasentinel-produce --help`` for the command; from Python, ``run(ProducerSettings(...))`` returns
a ``RunResult`` (``exit_code``, counts, per-row scores in ``ledger``). See producer/README.md.
"""
