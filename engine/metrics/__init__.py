"""The engine's Prometheus metrics: the collectors, one set per process or summed over workers
(``collectors``), and the /metrics HTTP endpoint, on its own address and optionally behind the
bearer token (``endpoint``)."""
