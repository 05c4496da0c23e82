#!/usr/bin/env bash
# The demo: the default prepare document, then a dry-run prepare of it with a summary per registry.
set -euo pipefail
cd "$(dirname "$0")/.."
work=demo-work
rm -rf "$work" && mkdir -p "$work"

echo "== imageprep prepare default --local-push-destination"
imageprep prepare default --local-push-destination --output-env-file "$work/containers-prepare-parameters.yaml"

echo
echo "== imageprep prepare --dry-run (no registry contacted)"
printf 'parameter_defaults:\n  LocalContainerRegistry: 127.0.0.1\n' > "$work/local-registry.yaml"
imageprep prepare -e "$work/containers-prepare-parameters.yaml" -e "$work/local-registry.yaml" \
    --dry-run --output-env-file "$work/images.yaml"
echo
echo "first parameters of $work/images.yaml:"
grep -m 5 "Image:" "$work/images.yaml"
