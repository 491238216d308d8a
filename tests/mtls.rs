//! Certificate-bound tokens (RFC 8705) through the layer on a real Axum server, with the
//! client certificate passed by a trusted front proxy in a header (the proxy's own tests
//! cover the TLS listener): every outcome of the match, enforcement, a header from an
//! untrusted peer, and mutual-TLS client authentication at the token endpoint.
//! Certificates are made by rcgen; thumbprints are computed here from RFC 8705 §3.1.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::{routing::get, Router};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::Algorithm;
use oauth_audit::token::TokenInspector;
use oauth_audit::writer::{Auditor, MemoryWriter};
use oauth_audit::{AuditLayer, RequiredScopes};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use support::keys::{hs256, now, HS256_SECRET};
use support::{client, events};

const HEADER: &str = "x-client-cert";

/// A client certificate: its DER, PEM, and RFC 8705 thumbprint.
struct Cert {
    der: Vec<u8>,
    pem: String,
}

impl Cert {
    fn self_signed(name: &str) -> Cert {
        let made = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
        Cert {
            der: made.cert.der().to_vec(),
            pem: made.cert.pem(),
        }
    }

    /// A certificate issued by a fresh CA.
    fn from_ca(name: &str) -> Cert {
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "test client CA");
        let ca_key = KeyPair::generate().unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let cert = params
            .signed_by(&KeyPair::generate().unwrap(), &issuer)
            .unwrap();
        Cert {
            der: cert.der().to_vec(),
            pem: cert.pem(),
        }
    }

    fn x5t(&self) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(&self.der))
    }

    /// As nginx's `$ssl_client_escaped_cert` writes it.
    fn escaped_pem(&self) -> String {
        percent_encoding::utf8_percent_encode(&self.pem, percent_encoding::NON_ALPHANUMERIC)
            .to_string()
    }
}

fn access_token(x5t: Option<&str>) -> String {
    let mut claims = json!({
        "sub": "svc", "client_id": "svc", "scope": "orders",
        "iss": "https://issuer", "exp": now() + 3600,
    });
    if let Some(x5t) = x5t {
        claims["cnf"] = json!({ "x5t#S256": x5t });
    }
    hs256(&claims)
}

struct App {
    base: String,
    memory: MemoryWriter,
    handled: Arc<AtomicUsize>,
}

impl App {
    /// The layer trusts `trusted` as front proxies and reads [`HEADER`] from them.
    async fn start(trusted: &str) -> App {
        let memory = MemoryWriter::new();
        let auditor = Auditor::builder().writer(memory.clone()).build().unwrap();
        let inspector = TokenInspector::builder()
            .hmac_secret(Algorithm::HS256, HS256_SECRET)
            .issuer(["https://issuer"])
            .build()
            .unwrap();
        let handled = Arc::new(AtomicUsize::new(0));
        let count = |handled: &Arc<AtomicUsize>| {
            let handled = handled.clone();
            move || {
                let handled = handled.clone();
                async move {
                    handled.fetch_add(1, Ordering::SeqCst);
                    "ok"
                }
            }
        };
        let app = Router::new()
            .route(
                "/orders",
                get(count(&handled)).route_layer(RequiredScopes::all(["orders"])),
            )
            .route(
                "/orders/list",
                get(count(&handled)).route_layer(RequiredScopes::all(["orders"]).enforce()),
            )
            .route(
                "/token",
                axum::routing::post(|body: String| async move {
                    // Binds what it issues to the certificate named in the request, as an
                    // authorization server does with the handshake's certificate.
                    let x5t = body
                        .split('&')
                        .find_map(|p| p.strip_prefix("bind="))
                        .unwrap_or_default()
                        .to_owned();
                    axum::Json(json!({
                        "access_token": access_token(Some(&x5t)),
                        "token_type": "Bearer", "expires_in": 300,
                    }))
                }),
            )
            .layer(
                AuditLayer::builder(auditor)
                    .token_inspector(inspector)
                    .trusted_proxies([trusted])
                    .client_certificate_header(HEADER)
                    .build()
                    .unwrap(),
            );
        let addr = support::serve(app).await;
        App {
            base: format!("http://{addr}"),
            memory,
            handled,
        }
    }

    async fn get(&self, path: &str, token: &str, certificate: Option<&str>) -> reqwest::Response {
        let mut request = client()
            .get(format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(certificate) = certificate {
            request = request.header(HEADER, certificate);
        }
        request.send().await.unwrap()
    }

    async fn event(&self, n: usize) -> Value {
        events(&self.memory, n).await[n - 1].clone()
    }
}

fn binding(event: &Value) -> &Value {
    &event["token"]["binding"]
}

#[tokio::test]
async fn a_front_proxys_certificate_is_matched_with_the_tokens_binding() {
    let app = App::start("127.0.0.1").await;
    let cert = Cert::from_ca("svc.example");
    let other = Cert::self_signed("other.example");
    let token = access_token(Some(&cert.x5t()));

    // The right certificate, in each encoding a front proxy writes.
    let encodings = [
        cert.escaped_pem(),
        cert.pem.replace('\n', " "),
        STANDARD.encode(&cert.der),
        format!(
            "By=spiffe://api;Cert=\"{}\";Subject=\"CN=svc.example\"",
            cert.escaped_pem()
        ),
        format!("By=spiffe://api;Hash={:x}", Sha256::digest(&cert.der)),
    ];
    let mut n = 0;
    for value in &encodings {
        assert_eq!(app.get("/orders", &token, Some(value)).await.status(), 200);
        n += 1;
        let e = app.event(n).await;
        assert_eq!(
            binding(&e),
            &json!({ "method": "mtls", "x5t#S256": cert.x5t(), "proof": "valid" }),
            "{value}"
        );
        assert_eq!(e["severity"], "info");
        let text = e.to_string();
        assert!(!text.contains(&STANDARD.encode(&cert.der)[..40]));
    }

    // Another certificate, none, and a header that holds none.
    app.get("/orders", &token, Some(&other.escaped_pem())).await;
    n += 1;
    let e = app.event(n).await;
    assert_eq!(
        binding(&e),
        &json!({
            "method": "mtls", "x5t#S256": cert.x5t(), "proof": "key_mismatch",
            "proof_x5t#S256": other.x5t(),
        })
    );
    assert_eq!(e["severity"], "warning");
    app.get("/orders", &token, None).await;
    n += 1;
    let e = app.event(n).await;
    assert_eq!(binding(&e)["proof"], "missing");
    // No certificate at all: a plain bearer token, which binding_downgrade alerts on.
    assert_eq!(binding(&e)["downgrade"], true, "{e}");
    for garbage in ["-----BEGIN CERTIFICATE-----%0Anope", "aGVsbG8=", "Hash=12"] {
        assert_eq!(
            app.get("/orders", &token, Some(garbage)).await.status(),
            200
        );
        n += 1;
        assert_eq!(
            binding(&app.event(n).await)["proof"],
            "malformed",
            "{garbage}"
        );
    }
    let long = "A".repeat(oauth_audit::mtls::MAX_HEADER_BYTES + 1);
    assert_eq!(app.get("/orders", &token, Some(&long)).await.status(), 200);
    n += 1;
    assert_eq!(binding(&app.event(n).await)["proof"], "malformed");

    // A token bound to nothing has no binding, certificate or not.
    app.get("/orders", &access_token(None), Some(&cert.escaped_pem()))
        .await;
    n += 1;
    assert!(app.event(n).await["token"].get("binding").is_none());
}

#[tokio::test]
async fn enforcing_routes_refuse_a_certificate_bound_token_without_its_certificate() {
    let app = App::start("127.0.0.1").await;
    let cert = Cert::self_signed("svc.example");
    let token = access_token(Some(&cert.x5t()));
    let refused = [
        None,
        Some(Cert::self_signed("thief.example").escaped_pem()),
        Some("garbage!".to_owned()),
    ];
    for (i, certificate) in refused.iter().enumerate() {
        let response = app
            .get("/orders/list", &token, certificate.as_deref())
            .await;
        assert_eq!(response.status(), 401);
        let challenge = response.headers()["www-authenticate"].to_str().unwrap();
        assert!(
            challenge.starts_with("Bearer error=\"invalid_token\""),
            "{challenge}"
        );
        let e = app.event(i + 1).await;
        assert_eq!(e["kind"], "AccessDenied");
        assert_eq!(e["error"]["code"], "invalid_token");
    }
    assert_eq!(app.handled.load(Ordering::SeqCst), 0);
    let response = app
        .get("/orders/list", &token, Some(&cert.escaped_pem()))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.handled.load(Ordering::SeqCst), 1);
    assert_eq!(binding(&app.event(4).await)["proof"], "valid");
}

#[tokio::test]
async fn the_header_of_a_peer_that_is_not_a_trusted_proxy_is_ignored() {
    let app = App::start("10.0.0.0/8").await;
    let cert = Cert::self_signed("svc.example");
    let token = access_token(Some(&cert.x5t()));
    app.get("/orders", &token, Some(&cert.escaped_pem())).await;
    assert_eq!(binding(&app.event(1).await)["proof"], "missing");
    // Enforcing routes refuse it: anyone could have written the header.
    let response = app
        .get("/orders/list", &token, Some(&cert.escaped_pem()))
        .await;
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn the_header_needs_trusted_proxies() {
    let error = AuditLayer::builder(Auditor::stdout())
        .client_certificate_header(HEADER)
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("trusted_proxies"), "{error}");
    let error = AuditLayer::builder(Auditor::stdout())
        .trusted_proxies(["127.0.0.1"])
        .client_certificate_header("not a header")
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("not a header"), "{error}");
}

#[tokio::test]
async fn the_token_endpoint_tells_self_signed_from_ca_issued_and_checks_the_binding() {
    let app = App::start("127.0.0.1").await;
    let self_signed = Cert::self_signed("svc.example");
    let from_ca = Cert::from_ca("svc.example");
    let request = |cert: &Cert, bind: &str, secret: bool| {
        let mut form = vec![
            ("grant_type", "client_credentials".to_owned()),
            ("client_id", "svc".to_owned()),
            ("bind", bind.to_owned()),
        ];
        if secret {
            form.push(("client_secret", "s3cret".to_owned()));
        }
        client()
            .post(format!("{}/token", app.base))
            .header(HEADER, cert.escaped_pem())
            .form(&form)
            .send()
    };
    request(&self_signed, &self_signed.x5t(), false)
        .await
        .unwrap();
    let e = app.event(1).await;
    assert_eq!(e["kind"], "AccessTokenIssued");
    assert_eq!(e["client_auth"], "self_signed_tls_client_auth");
    assert_eq!(
        binding(&e),
        &json!({ "method": "mtls", "x5t#S256": self_signed.x5t(), "proof": "valid" })
    );

    request(&from_ca, &from_ca.x5t(), false).await.unwrap();
    let e = app.event(2).await;
    assert_eq!(e["client_auth"], "tls_client_auth");
    assert_eq!(binding(&e)["proof"], "valid");

    // Issued for another certificate than the one presented; a secret authenticates.
    request(&from_ca, &self_signed.x5t(), true).await.unwrap();
    let e = app.event(3).await;
    assert_eq!(e["client_auth"], "client_secret_post");
    assert_eq!(
        binding(&e),
        &json!({
            "method": "mtls", "x5t#S256": self_signed.x5t(), "proof": "key_mismatch",
            "proof_x5t#S256": from_ca.x5t(),
        })
    );
    assert!(!e.to_string().contains("s3cret"));
}
