#!/usr/bin/env bash
# System packages the tests need, on Debian (bookworm): PostgreSQL 15 with the q3c extension,
# and Open MPI. The catalog stage's database source is tested against a real throw-away
# server (tests/catalog/conftest.py starts it), and run-mpi with a real 3-rank MPI job
# (tests/parallel/test_mpi.py; mpi4py comes with the dev extra); on CI neither test may be
# skipped.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

packages=(postgresql-15 postgresql-15-q3c openmpi-bin libopenmpi-dev)

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
command -v mpiexec >/dev/null
