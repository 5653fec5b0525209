"""The gRPC surface: our own ``datasentinel.v1`` service (``v1_servicer``, ``v1_converters``) and
the Open Inference Protocol / KServe v2 one (``oip_servicer``, ``oip_converters``) on the same
port, bidirectional streams answered in order (``streaming``), request decoding that never fails a
call (``decoding``), engine errors as gRPC status codes (``status``) and connection keepalive
options (``keepalive``). Each servicer converts, calls the scoring core, converts back."""
