#!/usr/bin/env bash
# Installs the system programs the test suite needs, from Debian's packages
# only, and only those that are missing:
#   - PostgreSQL server binaries (initdb, pg_ctl): tests/support/pg.py starts
#     a throwaway cluster with them;
#   - Chromium: the browser tests drive it;
#   - jq: the shell blocks of docs/integration.md use it, and
#     tests/docs/test_integration_doc.py runs them.
# Safe to run repeatedly: it prints one line per dependency and does nothing
# (not even `apt-get update`) when everything is already present.
set -euo pipefail

# apt-get needs root; sudo only when we are not root and it exists, so the
# script also works in containers that have no sudo at all.
SUDO=()
if [[ "$(id -u)" -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    else
        echo "install-test-deps: not root and sudo is not available" >&2
        exit 1
    fi
fi

have_postgres_server() {
    command -v initdb >/dev/null 2>&1 && return 0
    # Debian keeps the server binaries off PATH, under a versioned directory.
    local bin
    for bin in /usr/lib/postgresql/*/bin; do
        [[ -x "$bin/initdb" ]] && return 0
    done
    return 1
}

have_chromium() {
    [[ -x /usr/bin/chromium ]]
}

have_jq() {
    command -v jq >/dev/null 2>&1
}

apt_updated=0
apt_install() {
    if [[ "$apt_updated" -eq 0 ]]; then
        "${SUDO[@]}" apt-get update
        apt_updated=1
    fi
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@"
}

if have_postgres_server; then
    echo "postgresql: already present"
else
    apt_install postgresql
    have_postgres_server || { echo "postgresql: installed, but initdb still not found" >&2; exit 1; }
    echo "postgresql: installed"
fi

if have_chromium; then
    echo "chromium: already present"
else
    apt_install chromium fonts-dejavu-core
    have_chromium || { echo "chromium: installed, but /usr/bin/chromium still missing" >&2; exit 1; }
    echo "chromium: installed"
fi

if have_jq; then
    echo "jq: already present"
else
    apt_install jq
    have_jq || { echo "jq: installed, but still not found" >&2; exit 1; }
    echo "jq: installed"
fi
