"""Real images and RPMs made by the tests: busybox-based base images built with buildah from
scratch in a private vfs storage, and tiny noarch RPMs made with rpmbuild.

Nothing is downloaded. The storage lives in a temporary directory (never /var/lib/containers);
``storage.conf`` there is what the CLI under test finds through ``CONTAINERS_STORAGE_CONF``.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
import tempfile
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from imageprep.modify.buildah import Buildah, BuildahSettings

BUSYBOX = Path("/bin/busybox")
TIMEOUT = 120
APPLETS = ("sh", "ls", "cat", "rm", "mkdir", "echo", "true", "false", "env", "id", "cp")
NOVA_UID = 42436


# An Ansible role that labels the image with what it was given, for testing the role interface.
LABELLING_ROLE_TASKS = """\
- name: make a working container from the source image
  command: buildah from --pull=never --name {{ work }} {{ source_image }}
- name: record the variables the role got
  command: >-
    buildah config --label foo_version={{ foo_version }} --label build_tool={{ container_build_tool }}
    {{ work }}
- name: commit the modified image
  command: buildah commit --quiet {{ work }} {{ target_image }}{{ modified_append_tag }}
- name: remove the working container
  command: buildah rm {{ work }}
"""


def buildah_available() -> bool:
    return shutil.which("buildah") is not None and BUSYBOX.is_file()


def rpm_tools_available() -> bool:
    return shutil.which("rpm") is not None and shutil.which("rpmbuild") is not None


@dataclass
class ScratchStorage:
    """A private containers storage: library settings, the conf file for CLI runs, and a helper."""

    root: Path
    conf: Path

    @property
    def settings(self) -> BuildahSettings:
        return BuildahSettings(
            root=self.root / "graph", runroot=self.root / "run", driver="vfs", timeout=TIMEOUT
        )

    def buildah(self) -> Buildah:
        return Buildah(self.settings)

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``buildah ARGS`` against this storage (the tests' own, independent use of buildah)."""
        command = [
            "buildah",
            "--root",
            str(self.root / "graph"),
            "--runroot",
            str(self.root / "run"),
            "--storage-driver",
            "vfs",
            *args,
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT)
        if check and result.returncode != 0:
            raise AssertionError(f"buildah {' '.join(args)} failed: {result.stderr.strip()}")
        return result

    def containers(self) -> list[str]:
        """Working containers left in the storage (tests check none are leaked)."""
        return self.run("containers", "--quiet").stdout.split()

    def images(self) -> list[str]:
        """``name:tag`` of every named local image."""
        output = self.run("images", "--format", "{{.Name}}:{{.Tag}}").stdout
        return [line for line in output.split() if not line.startswith("<none>")]

    def config(self, image: str) -> dict[str, object]:
        data = json.loads(self.run("inspect", "--type", "image", image).stdout)
        config: dict[str, object] = data["Docker"]["config"]
        return config

    def layer_count(self, image: str) -> int:
        data = json.loads(self.run("inspect", "--type", "image", image).stdout)
        return len(data["Docker"]["rootfs"]["diff_ids"])

    def push_to_registry(self, image: str, destination: str) -> None:
        """Put a local image into a plain-HTTP loopback registry (``HOST:PORT/path:tag``)."""
        self.run("push", "--quiet", "--tls-verify=false", image, f"docker://{destination}")

    def cleanup(self) -> None:
        self.run("rm", "--all", check=False)
        self.run("rmi", "--all", "--force", check=False)


def make_storage(directory: Path) -> ScratchStorage:
    directory.mkdir(parents=True, exist_ok=True)
    conf = directory / "storage.conf"
    conf.write_text(
        textwrap.dedent(
            f"""\
            [storage]
            driver = "vfs"
            graphroot = "{directory / "graph"}"
            runroot = "{directory / "run"}"
            """
        )
    )
    return ScratchStorage(directory, conf)


def _staging_tree(directory: Path, files: Mapping[str, tuple[bytes, int]]) -> None:
    (directory / "bin").mkdir(parents=True)
    shutil.copy2(BUSYBOX, directory / "bin" / "busybox")
    for applet in APPLETS:
        (directory / "bin" / applet).symlink_to("busybox")
    (directory / "etc").mkdir()
    (directory / "etc" / "passwd").write_text(
        f"root:x:0:0:root:/root:/bin/sh\nnova:x:{NOVA_UID}:{NOVA_UID}:nova:/var/lib/nova:/bin/sh\n"
    )
    (directory / "etc" / "group").write_text(f"root:x:0:\nnova:x:{NOVA_UID}:\n")
    (directory / "tmp").mkdir()
    (directory / "tmp").chmod(0o1777)
    (directory / "root").mkdir()
    (directory / "var" / "log").mkdir(parents=True)
    for name, (content, mode) in files.items():
        path = directory / name.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        path.chmod(mode)


def make_base_image(
    storage: ScratchStorage,
    name: str,
    *,
    user: str = "nova",
    labels: Mapping[str, str] | None = None,
    files: Mapping[str, tuple[bytes, int]] | None = None,
) -> None:
    """A busybox image (``sh`` and a few applets, root and nova users) committed as ``name``.

    ``files`` adds ``{path: (content, mode)}``, e.g. fake ``usr/bin/rpm`` scripts.
    """
    with tempfile.TemporaryDirectory(prefix="imageprep-base-") as staging:
        _staging_tree(Path(staging), files or {})
        container = storage.run("from", "--quiet", "scratch").stdout.strip()
        try:
            storage.run("copy", "--quiet", container, f"{staging}/", "/")
            options = ["--user", user, "--cmd", "/bin/sh"]
            for key, value in (labels or {}).items():
                options += ["--label", f"{key}={value}"]
            storage.run("config", *options, container)
            storage.run("commit", "--quiet", "--format", "docker", container, name)
        finally:
            storage.run("rm", container, check=False)


def recording_script(log: str, exit_code: int = 0, message: str = "") -> tuple[bytes, int]:
    """A fake program for an image: appends its arguments to ``log`` (inside the image)."""
    text = f'#!/bin/sh\necho "$0 $*" >> {log}\n'
    if message:
        text += f"echo '{message}' >&2\n"
    text += f"exit {exit_code}\n"
    return text.encode(), 0o755


def make_rpm(
    directory: Path,
    name: str = "imageprep-hotfix-test",
    version: str = "1.0",
    files: Mapping[str, bytes] | None = None,
) -> Path:
    """A noarch RPM without dependencies holding ``files`` (``{absolute path: content}``)."""
    files = files or {f"/usr/share/{name}/marker": b"hotfixed\n"}
    with tempfile.TemporaryDirectory(prefix="imageprep-rpmbuild-") as top:
        topdir = Path(top)
        sources = topdir / "payload"
        for path, content in files.items():
            target = sources / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        steps = []
        for path in files:
            steps.append(f"mkdir -p %{{buildroot}}{Path(path).parent}")
            steps.append(f"cp {sources / path.lstrip('/')} %{{buildroot}}{path}")
        install = "\n".join(steps)
        spec = topdir / f"{name}.spec"
        spec.write_text(
            textwrap.dedent(
                """\
                Name: {name}
                Version: {version}
                Release: 1
                Summary: imageprep test package
                License: MIT
                BuildArch: noarch
                AutoReqProv: no
                %description
                A package made by the imageprep tests.
                %install
                {install}
                %files
                {files}
                """
            ).format(name=name, version=version, install=install, files="\n".join(files))
        )
        subprocess.run(
            [
                "rpmbuild",
                "-bb",
                "--define",
                f"_topdir {topdir}",
                "--define",
                "_build_id_links none",
                str(spec),
            ],
            check=True,
            capture_output=True,
            timeout=TIMEOUT,
        )
        built = next((topdir / "RPMS" / "noarch").glob("*.rpm"))
        directory.mkdir(parents=True, exist_ok=True)
        destination = directory / built.name
        shutil.copy2(built, destination)
        return destination


def unpack_dir_layout(layout: Path, rootfs: Path) -> dict[str, object]:
    """Apply the layers of a ``dir:`` layout (as written by skopeo) to ``rootfs``; the config."""
    manifest = json.loads((layout / "manifest.json").read_text())
    rootfs.mkdir(parents=True, exist_ok=True)
    for layer in manifest["layers"]:
        blob = (layout / layer["digest"].split(":", 1)[1]).read_bytes()
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r:*") as archive:
            for member in archive.getmembers():
                base = Path(member.name).name
                if base.startswith(".wh."):
                    victim = rootfs / Path(member.name).parent / base[4:]
                    if victim.is_dir() and not victim.is_symlink():
                        shutil.rmtree(victim)
                    else:
                        victim.unlink(missing_ok=True)
                    continue
                if member.isdev():
                    continue
                archive.extract(member, rootfs, filter="tar")
    config = json.loads((layout / manifest["config"]["digest"].split(":", 1)[1]).read_text())
    assert isinstance(config, dict)
    return config


def skopeo_to_dir(image: str, layout: Path, creds: str | None = None) -> None:
    """``skopeo copy docker://IMAGE dir:LAYOUT`` from a plain-HTTP loopback registry."""
    options: Sequence[str] = ["--src-creds", creds] if creds else []
    with tempfile.TemporaryDirectory(prefix="imageprep-skopeo-") as home:
        subprocess.run(
            [
                "skopeo",
                "--insecure-policy",
                "copy",
                "--src-tls-verify=false",
                *options,
                f"docker://{image}",
                f"dir:{layout}",
            ],
            check=True,
            capture_output=True,
            timeout=TIMEOUT,
            env={"PATH": "/usr/bin:/bin", "HOME": home},
        )


def rpm_query(rootfs: Path, package: str) -> subprocess.CompletedProcess[str]:
    """The host's ``rpm -q`` against an unpacked image (standard database location)."""
    return subprocess.run(
        ["rpm", "--root", str(rootfs), "--dbpath", "/var/lib/rpm", "-q", package],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
