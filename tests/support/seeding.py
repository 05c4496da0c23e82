"""Put generated images into a registry with skopeo, and read them back with skopeo.

skopeo is an independent client: what it pushes our client must read, and what our client pushes
skopeo must see with the same digest.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

from tests.support.imagegen import GeneratedImage, write_oci_layout
from tests.support.registry_server import RunningRegistry

SKOPEO_TIMEOUT = 120


def skopeo(*args: str) -> str:
    """Run skopeo (no signature policy, throwaway HOME and auth file); its stdout."""
    with tempfile.TemporaryDirectory(prefix="imageprep-skopeo-") as home:
        env = {"PATH": "/usr/bin:/bin", "HOME": home, "REGISTRY_AUTH_FILE": str(Path(home) / "auth.json")}
        result = subprocess.run(
            ["skopeo", "--insecure-policy", *args],
            capture_output=True,
            text=True,
            timeout=SKOPEO_TIMEOUT,
            env=env,
        )
    if result.returncode != 0:
        raise AssertionError(f"skopeo {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def _creds(registry: RunningRegistry, option: str) -> list[str]:
    return [option, registry.creds] if registry.creds else []


def seed_image(registry: RunningRegistry, repository: str, tag: str, image: GeneratedImage) -> None:
    """Copy an (OCI-typed) generated image into ``registry`` as ``repository:tag``."""
    with tempfile.TemporaryDirectory(prefix="imageprep-layout-") as layout:
        write_oci_layout(Path(layout), {tag: image})
        skopeo(
            "copy",
            "--preserve-digests",
            "--dest-tls-verify=false",
            *_creds(registry, "--dest-creds"),
            f"oci:{layout}:{tag}",
            f"docker://{registry.host}/{repository}:{tag}",
        )


def skopeo_inspect(registry: RunningRegistry, repository: str, tag: str) -> dict[str, object]:
    """What ``skopeo inspect`` reports about ``repository:tag`` (digest, labels, ...)."""
    output = skopeo(
        "inspect",
        "--tls-verify=false",
        *_creds(registry, "--creds"),
        f"docker://{registry.host}/{repository}:{tag}",
    )
    result: dict[str, object] = json.loads(output)
    return result


def skopeo_raw_manifest(registry: RunningRegistry, repository: str, tag: str) -> bytes:
    """The manifest bytes as skopeo reads them."""
    output = skopeo(
        "inspect",
        "--raw",
        "--tls-verify=false",
        *_creds(registry, "--creds"),
        f"docker://{registry.host}/{repository}:{tag}",
    )
    return output.encode()
