#!/bin/sh
# Runs the ported tests of issue 10 on the code before the fixes (db9ff9d).
# Usage, from the repository root of a db9ff9d checkout (branch i10-verify):
#   before-fixes/run.sh                 # installs the files, then prints the commands
# The files are copied over tests/ and cli/tests/ (main's support modules included) and the
# CLI gets the dev-dependencies main has (before-fixes/cli-dev-dependencies.patch).
# Undo with: git checkout -- tests cli/tests cli/Cargo.toml Cargo.lock && git clean -fd tests cli/tests
set -eu
cd "$(git rev-parse --show-toplevel)"
cp -r before-fixes/tests/. tests/
cp -r before-fixes/cli/tests/. cli/tests/
git apply --check before-fixes/cli-dev-dependencies.patch 2>/dev/null \
  && git apply before-fixes/cli-dev-dependencies.patch
[ -e cli/tests/oidc/node_modules ] || echo "note: cli/tests/oidc needs its node_modules (npm ci in cli/tests/oidc)"
echo "now run the commands listed in docs/security.md ("Before the fixes")"
