"""A relay between the grader and one sandboxed grading kernel, in a process of its own.

ZeroMQ bounds what one socket of the grader takes from a kernel by the size of each *part* of
a message (``MAXMSGSIZE``) and by the number of *messages* it holds unread (``RCVHWM``), but not
by the number of parts in one message: a kernel that sends one message of fifty parts of 30 MB
each makes the receiving process hold 1.5 GB before a single part can be read. So the grader
never connects to a sandboxed kernel itself. This process connects to the kernel's five
sockets, binds five of its own for the grader in a folder the kernel cannot see, and passes
each message on only if it is small (:data:`MAX_MESSAGE_BYTES` in all, :data:`MAX_PARTS`
parts). It runs with a memory limit of its own (:data:`MEMORY_BYTES`): a kernel that floods it
kills the relay, not the grader. The relay ends whenever a message is too large, a connection
to the kernel is closed, or the grader closes its standard input; the grader then sees its
connections closed and stops the kernel (``remote.Disconnects``).

Started by :class:`Relay` as a script (``python .../relay.py``: it imports ZeroMQ and nothing of
the course, so that it starts in a fraction of a second): it reads one line of JSON from its
standard input (the kernel's endpoints, the folder to bind in, the limits), answers ``ready``
when its sockets are bound, and reads its standard input until it closes.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

#: the kernel's channels: the relay's socket type toward the grader, then toward the kernel
CHANNELS = {"shell": ("ROUTER", "DEALER"), "control": ("ROUTER", "DEALER"),
            "stdin": ("ROUTER", "DEALER"), "hb": ("ROUTER", "DEALER"),
            "iopub": ("XPUB", "XSUB")}
#: the most parts a message may have (a Jupyter message has its routing frames, a delimiter,
#: a signature, four JSON parts and its buffers)
MAX_PARTS = 64
#: the most JSON values (counted as commas, braces and brackets) a message may hold: each
#: becomes a Python object in the grader, several times the bytes it takes (a message of 32 MB
#: of empty dicts made the grader use 4 GB)
MAX_JSON_VALUES = 1_000_000
#: messages kept for each connection of the grader's that is not read (ZeroMQ's default, as
#: a kernel keeps them)
SEND_QUEUE = 1000
#: the relay's own address space: Python, ZeroMQ and the messages it holds; a kernel that
#: floods a connection the grader is not reading ends its relay at this limit
MEMORY_BYTES = 1024**3
#: how long the grader waits for the relay to bind its sockets
START_SECONDS = 30.0


class Relay:
    """The relay process of one kernel, as the grader sees it."""

    #: set when the grader ends the relay itself
    stopping = False

    def __init__(self, kernel: dict, folder: Path):
        """``kernel``: the kernel's connection info (``transport``, ``ip``, ``*_port``);
        ``folder``: where to bind, a folder of the grader's that the kernel cannot see."""
        from medai_lessons.grading.remote import MAX_MESSAGE_BYTES, RECEIVE_QUEUE

        self.folder = folder
        self.ip = str(folder / "relay")
        spec = {"kernel": {k: kernel[k] for k in ("transport", "ip", *(
            f"{c}_port" for c in CHANNELS))}, "ip": self.ip,
            "largest": MAX_MESSAGE_BYTES, "queue": RECEIVE_QUEUE}
        with open(folder / "relay.log", "ab") as log:
            self.process = subprocess.Popen([sys.executable, "-I", __file__],
                                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                            stderr=log, start_new_session=True)
        self.process.stdin.write((json.dumps(spec) + "\n").encode())
        self.process.stdin.flush()
        line = _read_line(self.process.stdout, START_SECONDS)
        if line.strip() != b"ready":
            self.stop()
            tail = (folder / "relay.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the grader's relay to the kernel did not start: {tail}")

    def why(self) -> str:
        """What the relay last wrote to its log: why it ended, once it has."""
        lines = (self.folder / "relay.log").read_text(errors="replace").strip().splitlines()
        return lines[-1][:300] if lines else ""

    def stop(self) -> None:
        self.stopping = True
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()


def _read_line(stream, seconds: float) -> bytes:
    import select

    ready, _, _ = select.select([stream], [], [], seconds)
    return stream.readline() if ready else b""


def _url(transport: str, ip: str, port: int) -> str:
    return f"tcp://{ip}:{port}" if transport == "tcp" else f"{transport}://{ip}-{port}"


class _Routes:
    """The relay's sockets. The kernel answers a request, and sends its input requests, to the
    ZeroMQ identity of the client that asked: so each client of the grader that has an identity
    of its own (a kernel client's session) gets its own connection to the kernel under that
    identity, for each channel, and its stdin connection is made with its shell connection,
    before the kernel can ask it for input. Clients without one (the heartbeat's) share one
    connection per channel, their identity travelling in the message as the kernel expects."""

    def __init__(self, zmq, context, kernel: dict, ip: str, poller):
        self.zmq, self.context, self.kernel, self.poller = zmq, context, kernel, poller
        self.fronts, self.monitors = {}, set()
        self.backs: dict[tuple[str, bytes | None], object] = {}
        self.owner: dict[object, tuple[object, bytes | None]] = {}
        for channel, (front_type, _) in CHANNELS.items():
            front = context.socket(getattr(zmq, front_type))
            front.bind(_url("ipc", ip, int(kernel[f"{channel}_port"])))
            self.fronts[front] = channel
            poller.register(front, zmq.POLLIN)
        self.back("iopub", None)  # the kernel's output, for every subscriber

    def back(self, channel: str, ident: bytes | None):
        """The connection to the kernel's ``channel`` for the client ``ident``."""
        zmq, key = self.zmq, (channel, ident)
        if key not in self.backs:
            sock = self.context.socket(getattr(zmq, CHANNELS[channel][1]))
            if ident is not None:
                sock.setsockopt(zmq.IDENTITY, ident)
            monitor = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)
            sock.connect(_url(self.kernel["transport"], self.kernel["ip"],
                              int(self.kernel[f"{channel}_port"])))
            front = next(f for f, c in self.fronts.items() if c == channel)
            self.backs[key], self.owner[sock] = sock, (front, ident)
            self.monitors.add(monitor)
            self.poller.register(sock, zmq.POLLIN)
            self.poller.register(monitor, zmq.POLLIN)
        return self.backs[key]

    def forward(self, sock, parts) -> None:
        zmq = self.zmq
        channel = self.fronts.get(sock)
        if channel == "iopub":  # a subscription
            out = self.backs[("iopub", None)]
        elif channel is not None:  # a client's request: [its identity, the message...]
            ident = parts[0].bytes
            if ident[:1] in (b"", b"\0") or channel == "hb":
                out = self.back(channel, None)  # the identity stays in the message
            else:
                if channel == "shell":
                    self.back("stdin", ident)
                out, parts = self.back(channel, ident), parts[1:]
        else:  # from the kernel
            out, ident = self.owner[sock]
            if ident is not None:
                parts = [ident, *parts]
        try:
            out.send_multipart(parts, flags=zmq.NOBLOCK, copy=False)
        except zmq.Again:
            pass  # nobody reads the other side: dropped, as a full socket drops it


def serve(spec: dict) -> int:
    """Relay until something ends it; the exit status says what (for the relay's log)."""
    import zmq

    largest, queue = int(spec["largest"]), int(spec["queue"])
    context = zmq.Context()
    context.setsockopt(zmq.MAXMSGSIZE, largest)
    context.setsockopt(zmq.RCVHWM, queue)
    # what waits for a connection the grader is not reading at the time (the test cells'
    # while an answer cell runs) is kept as the kernel itself would keep it, up to a thousand
    # messages: a drain then finds its marker behind them. The memory limit bounds their size.
    context.setsockopt(zmq.SNDHWM, SEND_QUEUE)
    context.setsockopt(zmq.LINGER, 0)
    poller = zmq.Poller()
    routes = _Routes(zmq, context, spec["kernel"], spec["ip"], poller)
    poller.register(sys.stdin.fileno(), zmq.POLLIN)
    print("ready", flush=True)
    while True:
        for sock, _ in poller.poll():
            if sock == sys.stdin.fileno():
                if not os.read(sock, 4096):
                    return 0  # the grader is done with this kernel
                continue
            if sock in routes.monitors:
                print("the kernel closed a connection, or sent a part over the limit",
                      file=sys.stderr, flush=True)
                return 4
            parts = sock.recv_multipart(copy=False)
            size = sum(len(part) for part in parts)
            if len(parts) > MAX_PARTS or size > largest:
                print(f"the kernel sent one message of {len(parts)} parts and {size:,} bytes",
                      file=sys.stderr, flush=True)
                return 3
            values = _json_values(parts)
            if values > MAX_JSON_VALUES:
                print(f"the kernel sent one message of {values:,} JSON values",
                      file=sys.stderr, flush=True)
                return 3
            routes.forward(sock, parts)


def _json_values(parts) -> int:
    """About how many values a Jupyter message's JSON parts hold (its header, parent header,
    metadata and content: the four parts after the signature; not its binary buffers)."""
    views = [part.buffer for part in parts]
    try:
        start = next(i for i, v in enumerate(views) if v == b"<IDS|MSG>") + 2
    except StopIteration:
        start = 0
    total = 0
    for view in views[start:start + 4]:
        data = bytes(view)
        total += data.count(b",") + data.count(b"{") + data.count(b"[")
    return total


def main() -> int:
    spec = json.loads(sys.stdin.readline())
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return serve(spec)


if __name__ == "__main__":
    sys.exit(main())
