//! The report's HTML page in a real headless Chromium (Debian's `chromium`, installed by
//! `scripts/test`): it renders with no console error, its tables sort, a screenshot is
//! taken, and the key numbers are read back from the page's text.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::{run, TempDir};

/// Chromium as the project's notes say to run it as root on a closed network.
fn chromium(profile: &Path, args: &[&str]) -> Output {
    Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("chromium runs (scripts/test installs Debian's chromium)")
}

/// What the page logged to its console: errors, uncaught exceptions.
fn console_lines(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter(|line| line.contains(":CONSOLE"))
        .map(str::to_owned)
        .collect()
}

fn dump_dom(profile: &Path, page: &Path) -> (String, Vec<String>) {
    let output = chromium(
        profile,
        &[
            "--virtual-time-budget=2000",
            "--dump-dom",
            &format!("file://{}", page.display()),
        ],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        console_lines(&output),
    )
}

/// The trail of `report.rs`, smaller: enough for every section to have rows.
fn trail(path: &Path) {
    let lines = [
        r#"{"schema":"oauth-audit/1","id":"1","time":"2026-05-01T10:00:00.000000Z","kind":"AccessTokenIssued","outcome":"success","service":{"name":"orders-api"},"actor":{"client_id":"billing"},"grant_type":"client_credentials","scopes":{"requested":["orders:read","orders:write"],"granted":["orders:read","orders:write"]},"token":{"fingerprint":"sha256:01"}}"#,
        r#"{"schema":"oauth-audit/1","id":"2","time":"2026-05-30T10:00:00.000000Z","kind":"ResourceAccessed","outcome":"success","service":{"name":"orders-api"},"actor":{"client_id":"billing","subject":"alice"},"scopes":{"granted":["orders:read","orders:write"],"required":["orders:read"],"used":["orders:read"]},"http":{"method":"GET","route":"/api/orders"},"source":{"ip":"10.0.0.1"},"token":{"fingerprint":"sha256:01"}}"#,
        r#"{"schema":"oauth-audit/1","id":"3","time":"2026-05-30T11:00:00.000000Z","kind":"ResourceAccessed","outcome":"success","service":{"name":"orders-api"},"actor":{"client_id":"billing","subject":"zed"},"scopes":{"granted":["orders:read"],"required":["orders:read"],"used":["orders:read"]},"http":{"method":"GET","route":"/api/orders"},"source":{"ip":"10.0.0.2"},"token":{"fingerprint":"sha256:02"}}"#,
        r#"{"schema":"oauth-audit/1","id":"4","time":"2026-05-31T09:00:00.000000Z","kind":"LoginFailed","outcome":"failure","service":{"name":"orders-api"},"actor":{"subject":"<script>alert(1)</script>"},"source":{"ip":"203.0.113.9"}}"#,
        r#"{"schema":"oauth-audit/1","id":"5","time":"2026-05-31T09:01:00.000000Z","kind":"LoginFailed","outcome":"failure","service":{"name":"orders-api"},"actor":{"subject":"alice"},"source":{"ip":"203.0.113.9"}}"#,
        // A forged line: its kind is markup, and lands in a chart label and a table.
        r#"{"schema":"oauth-audit/1","id":"6","time":"2026-05-31T09:02:00.000000Z","kind":"<img src=x onerror=alert(2)>","outcome":"success","service":{"name":"orders-api"}}"#,
    ];
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

#[test]
fn a_console_error_is_seen() {
    // The check below could not fail if Chromium's console went unread.
    let dir = TempDir::new("report-page-console");
    let page = dir.write(
        "broken.html",
        "<html><body><p>x</p><script>undefinedFunction();</script></body></html>",
    );
    let (_, console) = dump_dom(&dir.path("profile"), &page);
    assert!(
        console
            .iter()
            .any(|line| line.contains("Uncaught ReferenceError")),
        "{console:?}"
    );
}

#[test]
fn the_page_renders_sorts_and_says_what_the_trail_says() {
    let dir = TempDir::new("report-page");
    let trail_path = dir.path("audit.jsonl");
    trail(&trail_path);
    let page = dir.path("report.html");
    let output = run(
        &[
            "report",
            trail_path.to_str().unwrap(),
            "--until",
            "2026-06-01T00:00:00Z",
            "--unused-after",
            "20d",
            "--out",
            page.to_str().unwrap(),
        ],
        &[],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let profile = dir.path("profile");

    let (dom, console) = dump_dom(&profile, &page);
    assert!(console.is_empty(), "console: {console:?}");
    // Read back from the rendered page.
    assert!(dom.contains("OAuth audit report"));
    assert!(
        dom.contains("<td>billing</td><td>orders:write</td><td>never</td>"),
        "{dom}"
    );
    assert!(dom.contains("<td>203.0.113.9</td><td class=\"n\">2</td><td class=\"n\">2</td>"));
    assert!(dom.contains("<svg"), "charts");
    // A username and a kind made of markup stay text, in the tables and in the charts.
    assert!(!dom.contains("<script>alert(1)</script>"));
    assert!(dom.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(
        !dom.contains("<img src=x"),
        "markup from the trail became an element"
    );
    assert!(dom.contains("&lt;img src=x onerror=alert(2)&gt;"));

    // The page lets only its own script run: one injected (as a value that escaped its
    // escaping would be) is refused by the content security policy.
    let html = std::fs::read_to_string(&page).unwrap();
    let injected = dir.write(
        "injected.html",
        &html.replace(
            "</body>",
            "<script>document.body.setAttribute('data-injected', '1')</script></body>",
        ),
    );
    let (dom, console) = dump_dom(&profile, &injected);
    assert!(
        !dom.contains("data-injected=\"1\""),
        "an injected script ran"
    );
    assert!(
        console
            .iter()
            .any(|line| line.contains("Content Security Policy")),
        "{console:?}"
    );

    // Sorting, with the page's own script: click "subject" twice (descending) and read
    // the first row back (the probe needs the policy out of its way).
    let csp_start = html
        .find("<meta http-equiv=\"Content-Security-Policy\"")
        .unwrap();
    let csp_end = csp_start + html[csp_start..].find('>').unwrap() + 1;
    let mut html = format!("{}{}", &html[..csp_start], &html[csp_end..]);
    let probe = r#"<script>
var th = document.querySelector('#access_review th');
th.click(); th.click();
var first = document.querySelector('#access_review tbody tr td').textContent;
document.body.setAttribute('data-first', first);
document.body.setAttribute('data-sort', th.getAttribute('aria-sort'));
</script></body>"#;
    html = html.replace("</body>", probe);
    let probed = dir.write("probed.html", &html);
    let (dom, console) = dump_dom(&profile, &probed);
    assert!(console.is_empty(), "console: {console:?}");
    assert!(
        dom.contains("data-first=\"zed\""),
        "sorted descending by subject"
    );
    assert!(dom.contains("data-sort=\"descending\""));

    let shot = dir.path("report.png");
    let output = chromium(
        &profile,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1200,2400",
            &format!("file://{}", page.display()),
        ],
    );
    assert!(output.status.success());
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    assert!(
        png.len() > 20_000,
        "more than a blank page: {} bytes",
        png.len()
    );
}
