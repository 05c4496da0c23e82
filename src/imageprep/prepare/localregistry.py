"""Where ``push_destination: true`` points: this host's local (image-serve) registry."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

LOCAL_REGISTRY_PORT = 8787
FALLBACK = f"localhost:{LOCAL_REGISTRY_PORT}"


def _with_port(host: str) -> str:
    try:
        if isinstance(ipaddress.ip_address(host), ipaddress.IPv6Address):
            return f"[{host}]:{LOCAL_REGISTRY_PORT}"
    except ValueError:
        pass
    if host.startswith("[") and host.endswith("]"):
        return f"{host}:{LOCAL_REGISTRY_PORT}"
    if ":" in host:
        return host  # already HOST:PORT or [v6]:PORT
    return f"{host}:{LOCAL_REGISTRY_PORT}"


def _ctlplane_name(hostname: str, hosts_file: Path) -> str | None:
    """The canonical name of ``<short hostname>.ctlplane`` in the hosts file, if listed.

    Only the hosts file is read (never DNS): the undercloud writes its ctlplane name there, and a
    dry run must not send queries anywhere.
    """
    wanted = f"{hostname.split('.', 1)[0]}.ctlplane"
    try:
        lines = hosts_file.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split("#", 1)[0].split()
        if len(fields) >= 2 and wanted in fields[1:]:
            return fields[1]
    return None


def local_registry_address(
    local_container_registry: Any, hostname: str, hosts_file: Path = Path("/etc/hosts")
) -> str:
    """``LocalContainerRegistry`` (+ :8787), else ``<host>.ctlplane``'s name, else ``localhost:8787``."""
    if isinstance(local_container_registry, str) and local_container_registry.strip():
        return _with_port(local_container_registry.strip())
    name = _ctlplane_name(hostname, hosts_file) if hostname else None
    return _with_port(name) if name else FALLBACK
