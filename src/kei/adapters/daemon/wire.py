"""The bytes between a ``kei`` client and the daemon.

A request is a 4-byte big-endian length and a payload of NUL-separated fields (no
field of an argv, an environment or a path can hold a NUL)::

    kei-daemon/1, kind, sys.prefix, package folder, cwd, umask, argc, argv..., env...

sent with the client's stdin, stdout and stderr attached (``SCM_RIGHTS``). ``kind`` is
``run``, ``ping`` or ``stop``. For ``run`` the command's process answers ``S`` and its
pid (4 bytes); the client answers ``G`` (go); only then does the command start, so a
client that gave up waiting can safely run the command itself. At the end the
process sends ``X`` and the exit code (1 byte). ``R`` and a reason refuses a request
before anything ran; ``P`` and NUL-separated fields answer a ping; ``K`` a stop.

Standard library only, no imports: the client's start-up is the point.
"""

from __future__ import annotations

MAGIC = b"kei-daemon/1"
MAX_REQUEST = 1 << 20  # 1 MiB: argv plus environment; Linux's own limit is 2 MiB
STARTED, GO, EXITED, REFUSED, PONG, STOPPING = b"S", b"G", b"X", b"R", b"P", b"K"


class Request:
    """One decoded request (argv, environment and paths as ``os.fsdecode`` gives them)."""

    __slots__ = ("argv", "cwd", "environ", "kind", "package", "prefix", "umask")

    def __init__(self, kind: str, prefix: str, package: str, cwd: str, umask: int,
                 argv: list[str], environ: dict[str, str]) -> None:  # fmt: skip
        self.kind, self.prefix, self.package = kind, prefix, package
        self.cwd, self.umask, self.argv, self.environ = cwd, umask, argv, environ


def encode(request: Request) -> bytes:
    """The framed request."""
    env = [f"{k}={v}" for k, v in request.environ.items()]
    fields = [MAGIC.decode(), request.kind, request.prefix, request.package, request.cwd,
              str(request.umask), str(len(request.argv)), *request.argv, *env]  # fmt: skip
    payload = b"\0".join(f.encode("utf-8", "surrogateescape") for f in fields)
    return len(payload).to_bytes(4, "big") + payload


def decode(payload: bytes) -> Request:
    """A payload (without its length) as a request; ValueError when it is not one."""
    fields = [f.decode("utf-8", "surrogateescape") for f in payload.split(b"\0")]
    if len(fields) < 7 or fields[0] != MAGIC.decode():
        raise ValueError("not a kei daemon request")
    kind, prefix, package, cwd, umask, argc = fields[1:7]
    count = int(argc)
    if not 0 <= count <= len(fields) - 7 or kind not in ("run", "ping", "stop"):
        raise ValueError("malformed kei daemon request")
    argv, rest = fields[7 : 7 + count], fields[7 + count :]
    environ = dict(entry.partition("=")[::2] for entry in rest if "=" in entry)
    return Request(kind, prefix, package, cwd, int(umask, 10) & 0o777, argv, environ)
