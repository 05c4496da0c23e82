#!/usr/bin/env bash
# Install what imageprep needs on a fresh Debian machine: the external tools (Debian packages) and
# a virtualenv with the package. `install-deps.sh demo` installs what `make demo` uses (a registry,
# skopeo, the package alone); `install-deps.sh` (or `test`) what the tests and the bench use too.
set -euo pipefail
cd "$(dirname "$0")/.."

MODE="${1:-test}"
case "$MODE" in
    demo)
        APT_PACKAGES=(skopeo docker-registry python3-venv)
        EXTRAS=""
        ;;
    test)
        APT_PACKAGES=(skopeo docker-registry apache2-utils python3-venv buildah podman rpm busybox-static
            apache2 nginx tinyproxy)
        EXTRAS="[test,ansible,openstack]"
        ;;
    *)
        echo "usage: $0 [demo|test]" >&2
        exit 2
        ;;
esac
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
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".${EXTRAS}"
