"""`harmonycloak serve`: this computer only unless --host says otherwise, the address printed,
Ctrl-C stops it cleanly."""

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from harmonycloak.app.cli import address, bind, is_loopback
from harmonycloak.cli import _parser
from harmonycloak.errors import SettingsError

pytest.importorskip("uvicorn", reason="the app's packages are not installed (pip install -e '.[app]')")
REPOSITORY = Path(__file__).resolve().parents[2]


def test_the_default_host_is_loopback_and_a_bound_socket_listens_there_only():
    arguments = _parser().parse_args(["serve"])
    assert arguments.host == "127.0.0.1" and is_loopback(arguments.host)
    listening = bind(arguments.host, 0)
    try:
        host, port = listening.getsockname()
        assert host == "127.0.0.1" and port > 0
        assert address(listening) == f"http://127.0.0.1:{port}/"
    finally:
        listening.close()
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.20") and is_loopback("::1")


def test_a_port_in_use_is_a_plain_error():
    taken = bind("127.0.0.1", 0)
    try:
        with pytest.raises(SettingsError, match="cannot listen on 127.0.0.1"):
            bind("127.0.0.1", taken.getsockname()[1])
    finally:
        taken.close()


def test_serve_prints_its_address_answers_there_and_stops_on_ctrl_c_removing_its_files(tmp_path):
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY), "OMP_NUM_THREADS": "1", "TMPDIR": str(tmp_path)}
    server = subprocess.Popen([sys.executable, "-m", "harmonycloak.cli", "serve", "--port", "0", "--max-queue", "3"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment)
    try:
        line = server.stdout.readline()
        match = re.search(r"open (http://127\.0\.0\.1:\d+/) in your browser", line)
        assert match, line + server.stderr.read() if server.poll() is not None else line
        with urllib.request.urlopen(match.group(1) + "api/options", timeout=60) as response:
            assert json.load(response)["max_queue"] == 3
        assert [path.name.startswith("harmonycloak-app-") for path in tmp_path.iterdir()] == [True]
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=60) == 0
        assert "stopped" in server.stdout.read() and list(tmp_path.iterdir()) == []
        assert "warning" not in server.stderr.read()  # loopback: no warning about other computers
    finally:
        if server.poll() is None:
            server.kill()
