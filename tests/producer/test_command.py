import subprocess
import sys


def test_python_m_producer_prints_results_to_stdout_and_logs_to_stderr(engine, args_for):
    argv = [sys.executable, "-m", "datasentinel.producer", *args_for(engine, "--count", "100")]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert "== summary" in done.stdout and "exit code 0" in done.stdout
    assert "INFO" not in done.stdout and "is SERVING" in done.stderr
    assert "\033[" not in done.stdout  # not a terminal: no colour
