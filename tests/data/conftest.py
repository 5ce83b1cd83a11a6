"""Fixtures of the data tests (helpers in data_helpers.py)."""

from __future__ import annotations

import functools
import http.server
import pathlib
import socket
import threading
from dataclasses import dataclass

import pytest
from data_helpers import CifarSet, IdxSet, RequestHandler, make_cifar_set, make_idx_set


@pytest.fixture
def idx_set() -> IdxSet:
    return make_idx_set()


@pytest.fixture
def cifar_set() -> CifarSet:
    return make_cifar_set()


@dataclass
class Server:
    root: pathlib.Path  # the folder served at url
    url: str  # http://127.0.0.1:<port>/
    requests: list[str]


@pytest.fixture
def http_server(tmp_path, monkeypatch):
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    root = tmp_path / "served"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(RequestHandler, directory=str(root)))
    server.root, server.requests, server.release = root, [], threading.Event()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield Server(root, f"http://127.0.0.1:{server.server_address[1]}/", server.requests)
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connections are refused at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/"
