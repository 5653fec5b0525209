"""The REST/JSON form of the Open Inference Protocol (KServe v2), on its own port
(ENGINE_HTTP_PORT): a thin transport over the same scoring core, converters, token, TLS files,
call budgets and metrics as the gRPC services (engine/README.md, "REST")."""
