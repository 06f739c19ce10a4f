#!/usr/bin/env bash
# System packages the tests need, on Debian (bookworm): PostgreSQL 15 with the q3c extension.
# The catalog stage's database source is tested against a real throw-away server
# (tests/catalog/conftest.py starts it); on CI that test must not be skipped.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

packages=(postgresql-15 postgresql-15-q3c)

missing=()
for package in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        sudo="sudo"
    fi
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# What the test fixture runs.
test -x /usr/lib/postgresql/15/bin/initdb
test -f /usr/share/postgresql/15/extension/q3c.control
