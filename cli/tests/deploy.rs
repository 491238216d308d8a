//! The deployment examples in `deploy/` are checked, not just written: the systemd unit by
//! `systemd-analyze verify`, the Kubernetes manifest against the Kubernetes OpenAPI schema
//! (`kubernetes-validate`, installed by `scripts/test` into `target/k8s-venv`), and the
//! configuration it carries by `oauth-audit check-config`.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::{run, TempDir};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn the_systemd_unit_verifies() {
    let unit = std::fs::read_to_string(root().join("deploy/systemd/oauth-audit.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/local/bin/oauth-audit proxy --config "));
    assert!(
        unit.contains("KillSignal=SIGTERM"),
        "the proxy flushes on SIGTERM"
    );
    // systemd-analyze checks that ExecStart is executable: point it at the binary built here.
    let dir = TempDir::new("systemd");
    let checked = dir.write(
        "oauth-audit.service",
        &unit.replace("/usr/local/bin/oauth-audit", support::binary()),
    );
    let output = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&checked)
        .output()
        .expect("systemd-analyze (scripts/test installs systemd)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // It reports unknown keys and bad values on standard error, with exit code 0.
    assert!(output.status.success() && said.trim().is_empty(), "{said}");

    // The check itself catches a misspelt key.
    let bad = dir.write(
        "bad.service",
        &unit
            .replace("/usr/local/bin/oauth-audit", support::binary())
            .replace("KillSignal=", "KilSignal="),
    );
    let output = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&bad)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&output.stderr).contains("Unknown key"));
}

fn validate(manifest: &Path) -> std::process::Output {
    let validator = root().join("target/k8s-venv/bin/kubernetes-validate");
    assert!(
        validator.exists(),
        "{} missing: scripts/test installs it (install_k8s_validator)",
        validator.display()
    );
    Command::new(validator)
        .args(["--strict", "--quiet"])
        .arg(manifest)
        .output()
        .unwrap()
}

#[test]
fn the_kubernetes_sidecar_validates_and_carries_a_working_configuration() {
    let path = root().join("deploy/kubernetes/sidecar.yaml");
    let output = validate(&path);
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let manifest = std::fs::read_to_string(&path).unwrap();
    // The probes ask the proxy's metrics address, where it answers them.
    for wanted in [
        "path: /healthz",
        "path: /readyz",
        "containerPort: 9464",
        "mountPath: /var/lib/oauth-audit",
        "mountPath: /var/log/oauth-audit",
    ] {
        assert!(manifest.contains(wanted), "no {wanted:?} in the manifest");
    }

    // The configuration in the ConfigMap is one the proxy accepts (its event directory
    // moved to a temporary one for the check).
    let start = manifest.find("oauth-audit.toml: |\n").unwrap() + "oauth-audit.toml: |\n".len();
    let end = manifest[start..].find("---").unwrap() + start;
    let toml: String = manifest[start..end]
        .lines()
        .map(|l| l.strip_prefix("    ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(toml.contains("metrics_listen = \"0.0.0.0:9464\""), "{toml}");
    let dir = TempDir::new("k8s-config");
    let events = dir.path("events");
    let file = dir.write(
        "oauth-audit.toml",
        &toml.replace("/var/log/oauth-audit", events.to_str().unwrap()),
    );
    let output = run(&["check-config", file.to_str().unwrap()], &[]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // The schema check itself catches a mistake.
    let broken = dir.write(
        "broken.yaml",
        &manifest.replace("periodSeconds: 10", "periodSeconds: often"),
    );
    assert!(!validate(&broken).status.success());
}
