"""/metrics of a real engine adds up to the traffic the test sent, with one worker process and
with several (their values are summed)."""

import socket
import time
import urllib.request

import grpc
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from datasentinel.v1 import scoring_pb2 as pb
from datasentinel.v1 import scoring_pb2_grpc as pb_grpc


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def request(x):
    rows, cols = x.shape
    return pb.ScoreRequest(
        ids=range(rows), raw=pb.RawVectors(data=x.tobytes(), rows=rows, cols=cols)
    )


@pytest.mark.parametrize("workers", [1, 2])
def test_counters_histograms_and_labels_add_up(tiny_model, start_engine, workers):
    engine = start_engine(tiny_model.dir, "--workers", str(workers))
    # Health says SERVING once one worker is; a later one's warm-up batch (one row, counted in
    # datasentinel_batch_rows) could otherwise land after the scrape below.
    engine.wait_log("SERVING model", count=workers)
    rng = np.random.default_rng(4)
    flagged = rows = 0
    with engine.channel() as channel:
        stub = pb_grpc.AnomalyScorerStub(channel)
        for _ in range(5):
            x = rng.normal(scale=2, size=(7, tiny_model.dim)).astype(np.float32)
            flagged += sum(stub.Score(request(x)).is_anomaly)
            rows += 7
        with pytest.raises(grpc.RpcError):
            stub.Score(request(np.zeros((1, tiny_model.dim + 1), np.float32)))
        stream = [request(np.ones((2, tiny_model.dim), np.float32)) for _ in range(3)]
        flagged += sum(sum(r.result.is_anomaly) for r in stub.ScoreStream(iter(stream)))
        rows += 6
    samples = scrape(engine.metrics_port)
    assert value(samples, "datasentinel_requests_total", rpc="Score", code="OK") == 5
    assert value(samples, "datasentinel_requests_total", rpc="Score", code="INVALID_ARGUMENT") == 1
    assert value(samples, "datasentinel_requests_total", rpc="ScoreStream", code="OK") == 3
    assert value(samples, "datasentinel_request_latency_seconds_count", rpc="Score") == 6
    # Only the client's rows: the workers' warm-up probes are no traffic.
    assert value(samples, "datasentinel_rows_scored_total") == rows
    assert value(samples, "datasentinel_anomalies_total") == flagged
    assert value(samples, "datasentinel_score_threshold_ratio_count") == rows
    assert value(samples, "datasentinel_batch_rows_sum") == rows + workers
    assert value(samples, "datasentinel_queue_depth") == 0
    info = [k for k in samples if k[0] == "datasentinel_model_info" and samples[k] == 1]
    assert info and ("model_version", tiny_model.version) in info[0][1]
    assert ("execution_provider", "CPUExecutionProvider") in info[0][1]


def closed_within(sock: socket.socket, seconds: float) -> float | None:
    """Seconds until the server closed ``sock`` (EOF or reset), or None if it stayed open."""
    start = time.monotonic()
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return None
    except OSError:
        pass
    return time.monotonic() - start


def test_a_client_trickling_its_request_is_cut_off_at_the_deadline(tiny_model, start_engine):
    """One header line every 0.5 s never lets a 1.5 s read timeout fire; the deadline does."""
    engine = start_engine(tiny_model.dir, "--metrics-idle-timeout-seconds", "1.5")
    with socket.create_connection(("127.0.0.1", engine.metrics_port)) as slow:
        slow.sendall(b"GET /metrics HTTP/1.1\r\n")
        start, closed = time.monotonic(), False
        for i in range(16):  # 8 s of trickling at most
            time.sleep(0.5)
            try:
                slow.sendall(f"X-Trickle-{i}: {i}\r\n".encode())
            except OSError:
                closed = True
                break
            if closed_within(slow, 0.01) is not None:
                closed = True
                break
        assert closed and time.monotonic() - start < 4, "still connected after the deadline"
    assert scrape(engine.metrics_port)  # and the endpoint serves on


def test_slow_clients_hold_at_most_the_connection_cap_and_scrapes_go_on(tiny_model, start_engine):
    engine = start_engine(
        tiny_model.dir,
        "--metrics-max-connections", "8",
        "--metrics-idle-timeout-seconds", "30",
    )  # fmt: skip
    address = ("127.0.0.1", engine.metrics_port)
    slow = [socket.create_connection(address) for _ in range(7)]
    try:
        for client in slow:
            client.sendall(b"GET /metrics HTTP/1.1\r\n")  # and nothing more
        assert scrape(engine.metrics_port)  # 7 slow clients: a scrape still gets the 8th slot
        slow.append(held_open(address))  # now every slot is taken
        with socket.create_connection(address) as excess:
            assert closed_within(excess, 2) is not None  # closed at once, unread
    finally:
        for client in slow:
            client.close()
    assert eventually_scraped(engine.metrics_port)  # the slots come back


def held_open(address: tuple[str, int], tries: int = 20) -> socket.socket:
    """A connection the server accepted and keeps. The scrape just answered may still hold its
    slot for a moment (its handler finishing): a connection refused for that is tried again, or
    the excess connection after it would find that slot free (a CI run under load did)."""
    for _ in range(tries):
        sock = socket.create_connection(address)
        if closed_within(sock, 1.0) is None:
            return sock
        sock.close()
    raise AssertionError(f"no slot came free in {tries} tries")


def eventually_scraped(port: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return bool(scrape(port))
        except OSError:
            time.sleep(0.1)
    return False
