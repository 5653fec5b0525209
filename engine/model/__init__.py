"""The ONNX model: loading and checking the trainer's artifacts into an ONNX Runtime session and
running it (``session``), the choice of execution providers (``providers``), and hot reload, which
swaps in new artifacts between two model calls and keeps the old model when they are bad
(``reload``)."""
