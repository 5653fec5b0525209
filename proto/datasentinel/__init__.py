"""DataSentinel's shared contracts: the gRPC API (``datasentinel.v1``), the trainer->engine model
config schema (``datasentinel.model_config``) and the synthetic data trainer and producer share."""

__version__ = "0.1.0"
