"""The channel room: connecting to the engine before anything streams. channel.py opens the gRPC
channel (reconnect backoff, keepalive, round_robin over replicas); security.py adds TLS, mutual
TLS and the bearer token; readiness.py waits for the engine to report SERVING and checks that its
model fits the input."""
