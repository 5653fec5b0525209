"""Transport security and authentication for the engine's gRPC port and metrics endpoint.

- ``tls``: server credentials from certificate files, reread when the files change;
- ``auth``: bearer tokens from a file, checked by one server interceptor;
- ``policy``: the start-up check that warns about (or refuses) an engine open to the network.
"""

from datasentinel.engine.security.auth import BearerTokenInterceptor, TokenFile, auth_interceptors
from datasentinel.engine.security.policy import SecurityConfigError, check_security
from datasentinel.engine.security.tls import add_port, server_credentials

__all__ = [
    "BearerTokenInterceptor",
    "SecurityConfigError",
    "TokenFile",
    "add_port",
    "auth_interceptors",
    "check_security",
    "server_credentials",
]
