# Installs what the test suite needs when it is missing. Sourced by scripts/test.

apt_install() {
    # $@: Debian packages, installed only when one of them is missing.
    local missing=()
    for pkg in "$@"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    ((${#missing[@]})) || return 0
    echo "== installing ${missing[*]}"
    if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

install_test_dependencies() {
    apt_install nats-server
    command -v cargo >/dev/null || { echo "cargo is required" >&2; exit 2; }
    rustup component list --installed 2>/dev/null | grep -q rustfmt || rustup component add rustfmt clippy
    # tests/postgres.rs starts its own PostgreSQL 15 server (initdb, pg_ctl).
    apt_install postgresql
}
