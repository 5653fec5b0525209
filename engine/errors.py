"""Domain errors of the scoring core. They know nothing of gRPC: ``engine.protocol.status`` maps
each one to a status code in one place."""


class EngineError(Exception):
    """Base of every error the engine reports to a client."""


class InvalidInput(EngineError):
    """The request itself is wrong (shape, values, ids): the client must fix it."""


class TooLarge(EngineError):
    """The request is bigger than the engine accepts: split it."""


class ModelNotFound(EngineError):
    """The request names a model or version this engine does not serve."""


class Overloaded(EngineError):
    """The engine's queue is full: retry later, with backoff."""


class Unavailable(EngineError):
    """The engine cannot score now (starting up or shutting down): retry elsewhere or later."""


class ModelLoadError(EngineError):
    """The model artifacts are missing, corrupt, or do not match each other."""


class ProviderError(EngineError):
    """The requested ONNX Runtime execution providers cannot be used."""


class BindError(EngineError):
    """The engine cannot listen on the requested address."""
