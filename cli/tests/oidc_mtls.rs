//! Certificate-bound tokens (RFC 8705) from a real provider: `oidc-provider` with its `mTLS`
//! feature behind the proxy, which terminates TLS with client certificates and passes the
//! certificate upstream. The provider binds a client_credentials token to the certificate;
//! the proxy records the binding at the token endpoint and enforces it on an API route.

mod support;

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rcgen::{CertificateParams, KeyPair};
use serde_json::Value;
use sha2::{Digest, Sha256};
use support::oidc::OidcProvider;
use support::{wait_event, Proxy, TempDir, WAIT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

struct ClientCert {
    der: Vec<u8>,
    key: Vec<u8>,
}

impl ClientCert {
    fn self_signed(name: &str) -> ClientCert {
        let made = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
        ClientCert {
            der: made.cert.der().to_vec(),
            key: made.signing_key.serialize_der(),
        }
    }

    fn x5t(&self) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(&self.der))
    }
}

/// One HTTP/1.1 request over TLS to `addr`, showing `certificate`; the whole answer.
async fn over_tls(
    addr: std::net::SocketAddr,
    server_ca: &str,
    certificate: Option<&ClientCert>,
    request: &str,
) -> String {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(server_ca.as_bytes()).unwrap())
        .unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let config = match certificate {
        Some(c) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from(c.der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(c.key.clone())),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
    let mut stream = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    // A TLS peer may close without close_notify once the response is complete.
    let _ = tokio::time::timeout(WAIT, stream.read_to_end(&mut answer))
        .await
        .expect("the proxy answers");
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn a_real_providers_certificate_bound_token_through_the_proxy() {
    let provider = OidcProvider::start();
    let dir = TempDir::new("oidc-mtls");
    let events = dir.path("audit.jsonl");
    let server_key = KeyPair::generate().unwrap();
    let server_cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .self_signed(&server_key)
        .unwrap();
    let cert_file = dir.write("server.pem", &server_cert.pem());
    let key_file = dir.write("server.key", &server_key.serialize_pem());
    let config = dir.write(
        "proxy.toml",
        &format!(
            "[proxy.tls]\ncertificate = {:?}\nkey = {:?}\nclient_certificates = \"optional\"\n\
             forward_client_certificate = \"x-client-cert\"\n\
             [[route]]\npath = \"/api/*\"\nscopes = [\"orders:read\"]\nenforce = true\n",
            cert_file.to_str().unwrap(),
            key_file.to_str().unwrap()
        ),
    );
    let proxy = Proxy::start(
        &[
            "--upstream",
            &provider.issuer,
            "--config",
            config.to_str().unwrap(),
            "--out",
            events.to_str().unwrap(),
            "--jwks-url",
            &format!("{}/jwks", provider.issuer),
            "--issuer",
            &provider.issuer,
            "--audience",
            "orders-api",
        ],
        &[],
    );
    let ca = server_cert.pem();
    let cert = ClientCert::self_signed("mtls-service.example");

    // The provider binds the token to the certificate the proxy passed on.
    let form = "grant_type=client_credentials&scope=orders%3Aread";
    let basic =
        base64::engine::general_purpose::STANDARD.encode("mtls-service:mtls-service-secret");
    let answer = over_tls(
        proxy.addr,
        &ca,
        Some(&cert),
        &format!(
            "POST /token HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\nx-request-id: token\r\n\
             authorization: Basic {basic}\r\ncontent-type: application/x-www-form-urlencoded\r\n\
             content-length: {}\r\n\r\n{form}",
            form.len()
        ),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let body: Value = serde_json::from_str(answer.split_once("\r\n\r\n").unwrap().1).unwrap();
    let token = body["access_token"].as_str().unwrap().to_owned();
    let issued = wait_event(&events, "token", |e| e["request_id"] == "token").await;
    assert_eq!(issued["kind"], "AccessTokenIssued", "{issued}");
    assert_eq!(issued["client_auth"], "client_secret_basic");
    let binding = &issued["token"]["binding"];
    assert_eq!(binding["method"], "mtls", "{issued}");
    assert_eq!(binding["x5t#S256"], cert.x5t().as_str(), "{issued}");
    assert_eq!(binding["proof"], "valid");

    // On an enforcing route: another certificate is refused by the proxy, the right one
    // passes (the provider has no such path and answers 404).
    let call = |id: &str| {
        format!(
            "GET /api/orders HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\
             x-request-id: {id}\r\nauthorization: Bearer {token}\r\n\r\n"
        )
    };
    let thief = ClientCert::self_signed("thief.example");
    let refused = over_tls(proxy.addr, &ca, Some(&thief), &call("thief")).await;
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    let e = wait_event(&events, "thief", |e| e["request_id"] == "thief").await;
    assert_eq!(e["token"]["verdict"], "valid", "{e}");
    assert_eq!(e["token"]["binding"]["proof"], "key_mismatch");
    assert_eq!(
        e["token"]["binding"]["proof_x5t#S256"],
        thief.x5t().as_str()
    );
    assert_eq!(e["error"]["code"], "invalid_token");

    let passed = over_tls(proxy.addr, &ca, Some(&cert), &call("owner")).await;
    assert!(!passed.starts_with("HTTP/1.1 401"), "{passed}");
    let e = wait_event(&events, "owner", |e| e["request_id"] == "owner").await;
    assert_eq!(e["token"]["binding"]["proof"], "valid", "{e}");
}
