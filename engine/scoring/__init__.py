"""The protocol-free path of a batch: the scoring core that validates batches, scores them and
decides anomalies (``core``), the greedy batcher that merges concurrent requests into one model
call (``batcher``), admission control and the transport limits that bound what the core holds
(``admission``), and raw tensor bytes <-> numpy (``tensors``). Nothing here knows gRPC."""
