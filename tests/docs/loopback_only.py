"""Run ``imageprep ARGS`` with every network connection outside 127.0.0.0/8 and ::1 refused.

The documentation examples use real registry names (docker.io, quay.io) and the seed's
192.168.24.1:8787 in places where nothing should be contacted. This launcher makes that a
checked fact: a lookup of any other host name, or a connection to any other address, fails the
way an unreachable registry does, so an example that would reach out fails instead.

Run as a script: ``python tests/docs/loopback_only.py prepare -e env.yaml ...``, or
``python tests/docs/loopback_only.py --script FILE`` for a Python example of the library.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from pathlib import Path
from typing import Any

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def is_loopback(host: object) -> bool:
    if not isinstance(host, str):
        return False
    name = host.strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def install_guard() -> None:
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and not is_loopback(host if isinstance(host, str) else str(host, "ascii")):
            raise socket.gaierror(
                socket.EAI_NONAME, f"documentation examples reach loopback only, not {host}"
            )
        return real_getaddrinfo(host, *args, **kwargs)

    def refuse(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not is_loopback(address[0]):
            raise ConnectionRefusedError(f"documentation examples reach loopback only, not {address[0]}")

    def connect(self: socket.socket, address: Any) -> None:
        refuse(self, address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        refuse(self, address)
        return real_connect_ex(self, address)

    socket.getaddrinfo = getaddrinfo
    socket.socket.connect = connect  # type: ignore[method-assign,assignment]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign,assignment]


def main() -> int:
    # Run as a script, this file's own directory is sys.path[0]; imageprep must not import the
    # harness modules beside it by accident.
    if sys.path and sys.path[0] == str(Path(__file__).resolve().parent):
        del sys.path[0]
    install_guard()
    if sys.argv[1:2] == ["--script"]:
        import runpy

        sys.argv = sys.argv[2:]
        runpy.run_path(sys.argv[0], run_name="__main__")
        return 0
    from imageprep.cli.app import main as imageprep_main

    sys.argv = ["imageprep", *sys.argv[1:]]
    return imageprep_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
