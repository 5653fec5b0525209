"""The stream room: everything that happens once the producer talks to the engine. client.py runs
the ``ScoreStream`` calls (the in-flight window, the reader and watchdog threads, reconnecting and
sending the unanswered requests again after a break); request_queue.py is one stream's plumbing;
messages.py turns batches into requests and answers into arrays; ledger.py keeps the exactly-once
account of every row; retry.py says what is worth retrying, how long to wait and when to give up;
fanout.py runs several streams at once over one channel (``--streams``)."""
