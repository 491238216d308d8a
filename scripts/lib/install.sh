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

install_oidc_provider() {
    # The CLI tests run the certified OpenID provider oidc-provider (npm) on Node.js, and
    # drive it with curl. Node comes from Debian unless one is already installed.
    command -v curl >/dev/null || apt_install curl
    command -v node >/dev/null || apt_install nodejs
    command -v npm >/dev/null || apt_install npm
    local dir=cli/tests/oidc
    if ! cmp -s "$dir/package-lock.json" "$dir/node_modules/.oauth-audit-installed" 2>/dev/null; then
        echo "== npm ci in $dir (oidc-provider)"
        npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
        cp "$dir/package-lock.json" "$dir/node_modules/.oauth-audit-installed"
    fi
}

install_ocsf_validator() {
    # src/format/tests.rs and tests/formats.rs validate OCSF output with tests/ocsf/validate.py:
    # the published OCSF schema as the pinned PyPI packages of tests/ocsf/requirements.txt
    # ship it, in a virtual environment of their own under target/.
    local venv=target/ocsf-venv requirements=tests/ocsf/requirements.txt
    command -v python3 >/dev/null || apt_install python3
    python3 -m venv --help >/dev/null 2>&1 || apt_install python3-venv
    if ! cmp -s "$requirements" "$venv/.oauth-audit-installed" 2>/dev/null; then
        echo "== pip install -r $requirements (into $venv)"
        rm -rf "$venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
        cp "$requirements" "$venv/.oauth-audit-installed"
    fi
}

install_k8s_validator() {
    local venv=target/k8s-venv requirements=tests/deploy/requirements.txt
    command -v python3 >/dev/null || apt_install python3
    python3 -m venv --help >/dev/null 2>&1 || apt_install python3-venv
    if ! cmp -s "$requirements" "$venv/.oauth-audit-installed" 2>/dev/null; then
        echo "== pip install -r $requirements (into $venv)"
        rm -rf "$venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
        cp "$requirements" "$venv/.oauth-audit-installed"
    fi
}

install_test_dependencies() {
    apt_install nats-server
    command -v cargo >/dev/null || { echo "cargo is required" >&2; exit 2; }
    rustup component list --installed 2>/dev/null | grep -q rustfmt || rustup component add rustfmt clippy
    # tests/postgres.rs starts its own PostgreSQL 15 server (initdb, pg_ctl).
    apt_install postgresql
    # tests/alertmanager.rs starts a real Alertmanager (the alert sink's peer).
    apt_install prometheus-alertmanager
    install_oidc_provider
    install_ocsf_validator
    # cli/tests/deploy.rs checks the deployment examples: the Kubernetes manifest against
    # the Kubernetes OpenAPI schema, the systemd unit with systemd-analyze.
    install_k8s_validator
    command -v systemd-analyze >/dev/null || apt_install systemd
    # cli/tests/report_page.rs opens the report's HTML page in a real headless Chromium.
    apt_install chromium
}

install_nightly() {
    # The documentation as docs.rs builds it, and scripts/fuzz, need a nightly toolchain.
    rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
}

install_fuzz_dependencies() {
    # scripts/fuzz: libFuzzer through cargo-fuzz, which needs a nightly toolchain.
    install_nightly
    command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
}
