#!/bin/sh
# Runs main's issue-10 tests on the code before the fixes (db9ff9d).
# Usage, from the repository root of a db9ff9d checkout (git worktree add ../old db9ff9d):
#   sh /path/to/main/before-fixes/run.sh /path/to/main
# It takes tests/ and cli/tests/ as they were on main at 942ce1e, applies the ports to the old
# API (before-fixes/ported.patch: each change marked PORTED, tests written for the old API
# marked ADDED) and gives the CLI the dev-dependencies main's tests use
# (before-fixes/cli-dev-dependencies.patch). Then run the commands listed in docs/security.md
# ("Before the fixes"). Undo with:
#   git checkout -- tests cli/tests cli/Cargo.toml Cargo.lock && git clean -fd tests cli/tests
set -eu
MAIN=${1:?usage: run.sh PATH-TO-MAIN-CHECKOUT}
cd "$(git rev-parse --show-toplevel)"
git -C "$MAIN" archive 942ce1e tests cli/tests | tar -x
patch -p1 -s < "$MAIN/before-fixes/ported.patch"
git apply --check "$MAIN/before-fixes/cli-dev-dependencies.patch" 2>/dev/null \
  && git apply "$MAIN/before-fixes/cli-dev-dependencies.patch"
[ -e cli/tests/oidc/node_modules ] || echo "note: cli/tests/oidc needs its node_modules (npm ci in cli/tests/oidc)"
echo 'now run the commands listed in docs/security.md ("Before the fixes")'
