//! The command line: help, exit codes, configuration errors, `check-config`, environment
//! overrides.

mod support;

use std::path::Path;

use support::upstream::Upstream;
use support::{at_path, http, run, wait_event, Proxy, TempDir};

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn every_command_has_help() {
    for args in [
        &["--help"][..],
        &["proxy", "--help"],
        &["check-config", "--help"],
        &["es-template", "--help"],
    ] {
        let output = run(args, &[]);
        assert_eq!(output.status.code(), Some(0), "{args:?}");
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(text.contains("Usage: oauth-audit"), "{args:?}: {text}");
    }
    let text = String::from_utf8_lossy(&run(&["proxy", "--help"], &[]).stdout).into_owned();
    for flag in [
        "--listen",
        "--upstream",
        "--config",
        "--out",
        "--jwks-url",
        "--issuer",
        "--audience",
        "--trusted-proxy",
    ] {
        assert!(text.contains(flag), "proxy --help mentions {flag}");
    }
}

#[test]
fn usage_errors_exit_2() {
    let output = run(&["proxy", "--no-such-flag"], &[]);
    assert_eq!(output.status.code(), Some(2));
    let output = run(
        &[
            "proxy",
            "--listen",
            "localhost",
            "--upstream",
            "http://127.0.0.1:1",
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("IP:PORT"), "{}", stderr(&output));
    let output = run(&["proxy", "--listen", "127.0.0.1:0"], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("no upstream"),
        "{}",
        stderr(&output)
    );
    let output = run(
        &[
            "proxy",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            "ftp://idp.example",
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("http:// or https:// URL"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn the_example_file_is_valid() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/oauth-audit.toml");
    let output = run(&["check-config", example.to_str().unwrap()], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains(": ok"));
}

/// Default endpoint paths are no longer exempt from enforcing rules unless `[endpoints]`
/// names them: a configuration that relied on that loads, and says what to add.
#[test]
fn an_enforcing_rule_over_a_default_endpoint_path_is_warned_of() {
    let dir = TempDir::new("default-endpoints");
    let jwks = dir.write("jwks.json", r#"{"keys":[]}"#);
    let rules = format!(
        "[jwt]\njwks_file = {:?}\n[[route]]\npath = \"/*\"\nscopes = [\"api\"]\nenforce = true\n",
        jwks.to_str().unwrap()
    );
    let file = dir.write("catch-all.toml", &rules);
    let output = run(&["check-config", file.to_str().unwrap()], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let err = stderr(&output);
    for key in ["token", "revocation", "introspection", "authorization"] {
        assert!(err.contains(&format!("add `{key} = [")), "{key} in {err}");
    }
    // Named, they are exempt: nothing to say.
    let named = dir.write(
        "named.toml",
        &format!("{rules}[endpoints]\ntoken = [\"/token\"]\nrevocation = [\"/revoke\"]\nintrospection = [\"/introspect\"]\nauthorization = [\"/authorize\"]\n"),
    );
    let output = run(&["check-config", named.to_str().unwrap()], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(!stderr(&output).contains("default"), "{}", stderr(&output));
}

#[test]
fn an_invalid_file_names_line_key_and_problem() {
    let dir = TempDir::new("bad-config");
    let cases = [
        (
            "service_name = \"idp\"\n[proxy]\nupstream = \"http://127.0.0.1:3000\"\ntrusted_proxies = [\"10.0.0.0/8\", \"10.1.0.0/99\"]\n",
            ":4:",
            "key `proxy.trusted_proxies`",
            "not an IP address or CIDR block",
        ),
        ("[jwt]\nleeway = \"1 minute\"\n", ":2:10:", "key `jwt.leeway`", "no known unit"),
        ("[jwt]\nissuer = [\"x\"]\n", ":2:1:", "key `jwt.issuer`", "unknown field `issuer`"),
        ("[[route]]\npath = \"orders\"\nscopes = [\"a\"]\n", ":2:8:", "key `route.path`", "patterns start with '/'"),
        ("[[writer]]\ntype = \"jsonl\"\nflush = \"sometimes\"\npath = \"a\"\n", ":3:9:", "key `writer.flush`", "unknown variant `sometimes`"),
        ("[proxy\nlisten = 1\n", ":1:", "", "unclosed table"),
        ("[endpoints]\nbody_limit = 99999999\n", ":2:14:", "key `endpoints.body_limit`", "choose between 1 and"),
        ("[queue]\ncapacity = 0\n", ":2:12:", "key `queue.capacity`", "at least 1"),
        ("[endpoints]\ntoken = [\"/token?x=1\"]\n", ":2:", "key `endpoints.token`", "no query string"),
    ];
    for (text, place, key, problem) in cases {
        let file = dir.write("bad.toml", text);
        for args in [
            vec!["check-config", file.to_str().unwrap()],
            vec![
                "proxy",
                "--config",
                file.to_str().unwrap(),
                "--upstream",
                "http://127.0.0.1:1",
                "--listen",
                "127.0.0.1:0",
            ],
        ] {
            let output = run(&args, &[]);
            let err = stderr(&output);
            assert_eq!(output.status.code(), Some(2), "{args:?}: {err}");
            assert!(err.contains(&format!("bad.toml{place}")), "line in {err}");
            assert!(err.contains(key), "key in {err}");
            assert!(err.contains(problem), "problem in {err}");
            assert!(!err.contains("panicked"), "{err}");
        }
    }
    let output = run(
        &["check-config", dir.path("missing.toml").to_str().unwrap()],
        &[],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("cannot read configuration file"));

    // Settings that contradict each other are refused, not silently ignored.
    let contradictory = dir.write(
        "contradictory.toml",
        "[endpoints]\ndevice_polling = \"every_poll\"\ndevice_codes_tracked = 100\n",
    );
    let output = run(&["check-config", contradictory.to_str().unwrap()], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("device_codes_tracked"));
}

#[test]
fn a_runtime_failure_exits_1() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = run(
        &[
            "proxy",
            "--listen",
            &addr,
            "--upstream",
            "http://127.0.0.1:1",
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stderr(&output).contains(&format!("cannot listen on {addr}")));
}

#[test]
fn environment_variables_are_checked_too() {
    let dir = TempDir::new("bad-env");
    let file = dir.write("ok.toml", "[jwt]\nleeway = \"30s\"\n");
    let output = run(
        &["check-config", file.to_str().unwrap()],
        &[("OAUTH_AUDIT_LEEWAY", "later")],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("environment variable OAUTH_AUDIT_LEEWAY"),
        "{}",
        stderr(&output)
    );
    let output = run(
        &["proxy", "--listen", "127.0.0.1:0"],
        &[("OAUTH_AUDIT_UPSTREAM", "ftp://idp")],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("ftp://idp"), "{}", stderr(&output));
}

#[tokio::test]
async fn environment_overrides_the_file_and_flags_override_both() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("env");
    let from_file = dir.path("from-file.jsonl");
    let from_env = dir.path("from-env.jsonl");
    let config = dir.write(
        "proxy.toml",
        &format!(
            "service_name = \"from-file\"\n[proxy]\nupstream = \"http://127.0.0.1:1\"\n[[writer]]\ntype = \"jsonl\"\npath = {:?}\n",
            from_file.to_str().unwrap()
        ),
    );
    let proxy = Proxy::start(
        &[
            "--config",
            config.to_str().unwrap(),
            "--service-name",
            "from-flag",
        ],
        &[
            ("OAUTH_AUDIT_UPSTREAM", upstream.url().as_str()),
            ("OAUTH_AUDIT_SERVICE_NAME", "from-env"),
            ("OAUTH_AUDIT_OUT", from_env.to_str().unwrap()),
        ],
    );
    let response = http().get(proxy.url("/env")).send().await.unwrap();
    assert_eq!(
        response.status(),
        200,
        "OAUTH_AUDIT_UPSTREAM replaced the file's dead upstream"
    );
    let event = wait_event(&from_env, "for /env", at_path("/env")).await;
    assert_eq!(event["service"]["name"], "from-flag");
    assert!(
        !from_file.exists(),
        "OAUTH_AUDIT_OUT replaced the file's writers"
    );
}

#[test]
fn configuration_errors_never_print_a_secret() {
    let dir = TempDir::new("secret-config");
    let marker = "s3cr3t-value";
    let cases = [
        // The quoted line showed the query.
        "[proxy]\nupstream = \"http://127.0.0.1:3000/?token=s3cr3t-value\"\n",
        // A token put by mistake where a variable NAME goes.
        "[[writer]]\ntype = \"nats\"\nservers = [\"nats://127.0.0.1:4222\"]\ntoken_env = \"eyJhbGciOiJIUzI1NiJ9.s3cr3t-value\"\n",
        "[[writer]]\ntype = \"http\"\nurl = \"http://127.0.0.1:1/bulk\"\nformat = \"json_lines\"\napi_key_env = \"s3cr3t-value\"\n",
        // TOML messages echo the value: "invalid type: integer `...`".
        "[introspection]\nurl = \"http://127.0.0.1:1/i\"\nclient_id = \"p\"\nclient_secret = 31415926535897\n",
        "[[writer]]\ntype = \"http\"\nurl = \"http://127.0.0.1:1/bulk\"\nformat = \"json_lines\"\n[writer.headers]\nAuthorization = 31415926535897\n",
    ];
    for (i, text) in cases.iter().enumerate() {
        let file = dir.write(&format!("case{i}.toml"), text);
        let output = run(&["check-config", file.to_str().unwrap()], &[]);
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "case {i}: {err}");
        assert!(!err.contains(marker), "case {i} printed the secret: {err}");
        assert!(
            !err.contains("31415926535897"),
            "case {i} printed the secret: {err}"
        );
        assert!(err.contains(&format!("case{i}.toml:")), "case {i}: {err}");
    }
    // An all-capitals token is not a variable name either.
    let file = dir.write(
        "caps.toml",
        "[[writer]]\ntype = \"nats\"\nservers = [\"nats://127.0.0.1:4222\"]\ntoken_env = \"AKIAIOSFODNN7S3CR3T\"\n",
    );
    let output = run(&["check-config", file.to_str().unwrap()], &[]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(!err.contains("AKIAIOSFODNN7S3CR3T"), "{err}");
    assert!(err.contains("NAME of an environment variable"), "{err}");

    // Flags and their variables: the URL is shown without its query.
    let url = "https://127.0.0.1:1/?token=s3cr3t-value";
    for output in [
        run(
            &["proxy", "--listen", "127.0.0.1:0", "--upstream", url],
            &[],
        ),
        run(
            &["proxy", "--listen", "127.0.0.1:0"],
            &[("OAUTH_AUDIT_UPSTREAM", url)],
        ),
        run(
            &[
                "proxy",
                "--listen",
                "127.0.0.1:0",
                "--upstream",
                "http://127.0.0.1:1",
                "--jwks-url",
                "ftp://127.0.0.1:1/jwks?key=s3cr3t-value",
            ],
            &[],
        ),
    ] {
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{err}");
        assert!(!err.contains(marker), "{err}");
        assert!(err.contains("127.0.0.1:1/"), "{err}");
    }
}

#[tokio::test]
async fn logs_never_print_the_query_of_a_jwks_or_introspection_url() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("secret-logs");
    let config = dir.write(
        "proxy.toml",
        "[introspection]\nurl = \"http://127.0.0.1:1/introspect?api_key=s3cr3t-value\"\nclient_id = \"proxy\"\n",
    );
    let proxy = Proxy::start(
        &[
            "--upstream",
            &upstream.url(),
            "--out",
            "-",
            "--config",
            config.to_str().unwrap(),
            "--jwks-url",
            "http://127.0.0.1:1/jwks?key=s3cr3t-value",
        ],
        &[],
    );
    let jwks = proxy.wait_log("JWKS refresh failed");
    assert!(!jwks.contains("s3cr3t-value"), "{jwks}");
    assert!(jwks.contains("127.0.0.1:1/jwks?…"), "{jwks}");
    let response = http()
        .get(proxy.url("/api"))
        .header("authorization", "Bearer an-opaque-token")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let introspection = proxy.wait_log("introspection failed");
    assert!(!introspection.contains("s3cr3t-value"), "{introspection}");
    assert!(
        introspection.contains("127.0.0.1:1/introspect?…"),
        "{introspection}"
    );
}

/// `check-config` builds what `proxy` builds, so what would stop `proxy` at start stops it:
/// each case exits 2 and says why, in `check-config` and in `proxy` alike.
#[test]
fn check_config_reports_what_proxy_would_refuse_at_start() {
    let dir = TempDir::new("check-builds");
    let regular_file = dir.write("not-a-directory", "");
    let jwks = dir.write("jwks.json", r#"{"keys":[]}"#);
    let cases = [
        (
            "unset-url-env.toml",
            "[[writer]]\ntype = \"postgres\"\nurl_env = \"OAUTH_AUDIT_TEST_UNSET_DATABASE_URL\"\n"
                .to_owned(),
            "the environment variable OAUTH_AUDIT_TEST_UNSET_DATABASE_URL is not set",
        ),
        (
            "enforce-without-keys.toml",
            "[jwt]\nissuers = [\"https://idp.example\"]\n[[route]]\npath = \"/admin/*\"\nscopes = [\"admin\"]\nenforce = true\n"
                .to_owned(),
            "route /admin/*: enforce = true needs a key source",
        ),
        (
            "require-dpop-without-origins.toml",
            format!(
                "[jwt]\njwks_file = {:?}\n[[route]]\npath = \"/pay/*\"\nscopes = [\"pay\"]\nrequire_dpop = true\n",
                jwks.to_str().unwrap()
            ),
            "route /pay/*: require_dpop = true needs [dpop] origins",
        ),
        (
            "bad-spool.toml",
            format!(
                "[[writer]]\ntype = \"postgres\"\nurl = \"postgres://audit@127.0.0.1:1/audit\"\n[writer.delivery]\nspool_dir = {:?}\n",
                regular_file.join("spool").to_str().unwrap()
            ),
            "spool_dir",
        ),
        (
            "bad-file-spool.toml",
            format!(
                "[[writer]]\ntype = \"jsonl\"\npath = {:?}\n[writer.retry]\nspool_dir = {:?}\n",
                dir.path("audit.jsonl").to_str().unwrap(),
                regular_file.join("spool").to_str().unwrap()
            ),
            "spool_dir",
        ),
        (
            "chain-missing-key.toml",
            format!(
                "[chain]\nkey_file = {:?}\n",
                dir.path("missing.key").to_str().unwrap()
            ),
            "chain key_file: cannot read key file",
        ),
        (
            "chain-bad-key.toml",
            format!("[chain]\nkey_file = {:?}\n", regular_file.to_str().unwrap()),
            "chain key_file: not a signer key",
        ),
        (
            "chain-unset-key-env.toml",
            "[chain]\nkey_env = \"OAUTH_AUDIT_TEST_UNSET_CHAIN_KEY\"\n".to_owned(),
            "the environment variable OAUTH_AUDIT_TEST_UNSET_CHAIN_KEY is not set",
        ),
        (
            "chain-checkpoints-without-key.toml",
            format!(
                "[chain]\ncheckpoint_file = {:?}\n",
                dir.path("checkpoints.jsonl").to_str().unwrap()
            ),
            "checkpoint_file and checkpoint_url need a signing key",
        ),
        (
            "detect-unknown-rule.toml",
            "[detect]\ndisable = [\"brute-force\"]\n".to_owned(),
            "detect disable: no rule \"brute-force\"",
        ),
        (
            "detect-unknown-field.toml",
            "[detect.rules.brute_force]\ngroup_by = [\"source.address\"]\n".to_owned(),
            "unknown field \"source.address\"",
        ),
    ];
    for (name, text, reason) in cases {
        let file = dir.write(name, &text);
        for args in [
            vec!["check-config", file.to_str().unwrap()],
            vec![
                "proxy",
                "--config",
                file.to_str().unwrap(),
                "--upstream",
                "http://127.0.0.1:1",
                "--listen",
                "127.0.0.1:0",
            ],
        ] {
            let output = run(&args, &[]);
            let err = stderr(&output);
            assert_eq!(output.status.code(), Some(2), "{name} {args:?}: {err}");
            assert!(err.contains("configuration error"), "{name}: {err}");
            assert!(err.contains(reason), "{name} {args:?}: {err}");
        }
    }
    // The same files with what was missing: accepted.
    let fixed = [
        "[[writer]]\ntype = \"postgres\"\nurl_env = \"OAUTH_AUDIT_TEST_DATABASE_URL\"\n"
            .to_owned(),
        format!(
            "[jwt]\njwks_file = {:?}\n[[route]]\npath = \"/admin/*\"\nscopes = [\"admin\"]\nenforce = true\n",
            jwks.to_str().unwrap()
        ),
        "[introspection]\nurl = \"http://127.0.0.1:1/introspect\"\nclient_id = \"p\"\n[[route]]\npath = \"/admin/*\"\nscopes = [\"admin\"]\nenforce = true\n"
            .to_owned(),
        format!(
            "[chain]\nkey_file = {:?}\nstate_file = {:?}\n",
            dir.write(
                "chain.key",
                &oauth_audit::chain::SigningKey::generate("test")
                    .unwrap()
                    .encode()
            )
            .to_str()
            .unwrap(),
            dir.path("chain.state").to_str().unwrap()
        ),
    ];
    for (i, text) in fixed.iter().enumerate() {
        let file = dir.write(&format!("fixed{i}.toml"), text);
        let output = run(
            &["check-config", file.to_str().unwrap()],
            &[(
                "OAUTH_AUDIT_TEST_DATABASE_URL",
                "postgres://audit@127.0.0.1:1/audit",
            )],
        );
        assert_eq!(
            output.status.code(),
            Some(0),
            "fixed{i}: {}",
            stderr(&output)
        );
    }
}

/// `check-config` opens and locks spool directories, but connects to nothing: not to the
/// databases, brokers and collectors of the writers, nor to the JWKS or introspection URL.
#[test]
fn check_config_builds_everything_without_network_io() {
    let dir = TempDir::new("check-offline");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let spool = dir.path("spool");
    let file = dir.write(
        "all.toml",
        &format!(
            r#"
[jwt]
jwks_url = "http://{addr}/jwks"
[introspection]
url = "http://{addr}/introspect"
client_id = "p"
[[route]]
path = "/admin/*"
scopes = ["admin"]
enforce = true
[[writer]]
type = "postgres"
url = "postgres://audit@{addr}/audit"
[writer.delivery]
spool_dir = {spool:?}
[[writer]]
type = "nats"
servers = ["nats://{addr}"]
[[writer]]
type = "http"
url = "http://{addr}/bulk"
format = "json_lines"
[[writer]]
type = "jsonl"
path = {out:?}
"#,
            spool = spool.to_str().unwrap(),
            out = dir.path("audit.jsonl").to_str().unwrap(),
        ),
    );
    let output = run(&["check-config", file.to_str().unwrap()], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("1 route rule(s), 4 writer(s)"),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(spool.is_dir(), "the spool was opened");
    match listener.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("check-config connected to {addr}: {other:?}"),
    }
}
