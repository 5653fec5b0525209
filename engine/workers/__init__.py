"""Several engine processes on one port (``--workers N``): the supervisor process that checks the
model and port once, starts the workers and serves their summed metrics (``supervisor``), its loop
that restarts a worker that dies, within a budget (``restarts``), and a worker's tie to its
supervisor, so no orphan keeps serving when the supervisor dies (``parent_watch``)."""
