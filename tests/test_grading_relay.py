"""The relay between the grader and a sandboxed kernel (``medai_lessons.grading.relay``), with
real ZeroMQ sockets standing in for a kernel's and a real relay process: what passes, under
whose identity, and what ends it."""

from __future__ import annotations

import time

import pytest
import zmq

from medai_lessons.grading import relay, remote

PORTS = {"shell_port": 1, "iopub_port": 2, "stdin_port": 3, "control_port": 4, "hb_port": 5}


@pytest.fixture
def kernel(tmp_path):
    """The kernel's side: its five sockets bound as a kernel binds them, and a relay to them."""
    context = zmq.Context()
    ip = str(tmp_path / "kernel")
    socks = {}
    for channel, kind in (("shell", zmq.ROUTER), ("iopub", zmq.PUB), ("stdin", zmq.ROUTER),
                          ("control", zmq.ROUTER), ("hb", zmq.ROUTER)):
        socks[channel] = context.socket(kind)
        socks[channel].bind(f"ipc://{ip}-{PORTS[channel + '_port']}")
    folder = tmp_path / "relay"
    folder.mkdir(mode=0o700)
    r = relay.Relay({"transport": "ipc", "ip": ip, **PORTS}, folder)
    yield socks, r
    r.stop()
    context.destroy(linger=0)


def _client(context, r, channel, kind, identity=None):
    sock = context.socket(kind)
    if identity:
        sock.setsockopt(zmq.IDENTITY, identity)
    if kind == zmq.SUB:
        sock.setsockopt(zmq.SUBSCRIBE, b"")
    sock.connect(f"ipc://{r.ip}-{PORTS[channel + '_port']}")
    return sock


def _recv(sock, seconds=10.0):
    assert sock.poll(int(seconds * 1000)), "nothing arrived"
    return sock.recv_multipart()


def _address_space_limit(pid: int) -> int:
    for line in open(f"/proc/{pid}/limits"):
        if line.startswith("Max address space"):
            return int(line.split()[3])
    raise AssertionError("no address space limit listed")


def test_requests_replies_and_input_requests_keep_each_clients_identity(kernel):
    socks, r = kernel
    context = remote.grader_context()
    shell = _client(context, r, "shell", zmq.DEALER, b"session-a")
    stdin = _client(context, r, "stdin", zmq.DEALER, b"session-a")
    other = _client(context, r, "shell", zmq.DEALER, b"session-b")
    shell.send_multipart([b"<IDS|MSG>", b"execute"])
    ident, *rest = _recv(socks["shell"])
    assert ident == b"session-a" and rest == [b"<IDS|MSG>", b"execute"]  # as without a relay
    # the kernel answers, and asks for input, by that identity: only that client hears it
    socks["shell"].send_multipart([b"session-a", b"<IDS|MSG>", b"reply"])
    socks["stdin"].send_multipart([b"session-a", b"<IDS|MSG>", b"input_request"])
    assert _recv(shell) == [b"<IDS|MSG>", b"reply"]
    assert _recv(stdin) == [b"<IDS|MSG>", b"input_request"]
    assert not other.poll(300)
    stdin.send_multipart([b"<IDS|MSG>", b"input_reply"])
    assert _recv(socks["stdin"]) == [b"session-a", b"<IDS|MSG>", b"input_reply"]
    # the kernel's output reaches every subscriber; the heartbeat echoes
    sub = _client(context, r, "iopub", zmq.SUB)
    hb = _client(context, r, "hb", zmq.REQ)
    deadline = time.monotonic() + 10
    while not sub.poll(100) and time.monotonic() < deadline:  # until the subscription is through
        socks["iopub"].send_multipart([b"status", b"busy"])
    assert _recv(sub) == [b"status", b"busy"]
    hb.send(b"ping")
    frames = _recv(socks["hb"])
    socks["hb"].send_multipart(frames)
    assert _recv(hb) == [b"ping"]
    assert r.process.poll() is None
    # whatever the kernel sends, the relay holds at most this much
    assert _address_space_limit(r.process.pid) == relay.MEMORY_BYTES
    context.destroy(linger=0)


@pytest.mark.parametrize("how", ["many_parts", "too_many_parts", "part_over_the_limit"])
def test_a_message_the_grader_could_not_hold_ends_the_relay_and_never_reaches_the_grader(
        kernel, how):
    socks, r = kernel
    context = remote.grader_context()
    sub = _client(context, r, "iopub", zmq.SUB)
    disconnects = sub.get_monitor_socket(zmq.EVENT_DISCONNECTED)
    deadline = time.monotonic() + 10
    while not sub.poll(100) and time.monotonic() < deadline:
        socks["iopub"].send_multipart([b"status", b"idle"])
    sub.recv_multipart()
    big = b"m" * 30_000_000  # each part under the limit of a part
    if how == "many_parts":  # 1.2 GB in one message: more than the relay may hold
        message = [b"stream"] + [big] * 40
    elif how == "too_many_parts":  # small, but more parts than a Jupyter message has
        message = [b"stream"] + [b"p"] * (relay.MAX_PARTS + 1)
    else:  # one part of 40 MB
        message = [b"stream", b"m" * 40_000_000]
    socks["iopub"].send_multipart(message, copy=False)
    assert r.process.wait(timeout=60) != 0, "the relay passed it on"
    assert r.why(), "the relay did not say why it ended"
    assert disconnects.poll(10_000), "the grader's connection was not closed"
    while sub.poll(0):
        got = sub.recv_multipart()
        assert sum(map(len, got)) < remote.MAX_MESSAGE_BYTES, "a large message reached the grader"
    context.destroy(linger=0)


def test_the_relay_ends_when_the_grader_closes_its_input(kernel):
    _, r = kernel
    r.process.stdin.close()
    assert r.process.wait(timeout=10) == 0
