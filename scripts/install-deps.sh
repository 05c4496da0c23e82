#!/usr/bin/env bash
# Install what imageprep's tests and demo need on a fresh Debian machine: the external tools
# (from Debian packages) and a virtualenv with the package and its test dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(skopeo docker-registry apache2-utils python3-venv buildah podman rpm busybox-static apache2 nginx tinyproxy)
missing=()
for package in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
    echo "installing Debian packages: ${missing[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test,ansible,openstack]'
