//! Certificate-bound tokens (RFC 8705) through the real `oauth-audit proxy`: client
//! certificates on its TLS listener (any certificate, or only a client CA's), and a trusted
//! front proxy's header on a plain listener. Real TLS on 127.0.0.1, certificates made by
//! rcgen, tokens signed here (ES256) and verified by the proxy with a JWKS file.

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::pkcs8::{EncodePrivateKey, LineEnding};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use support::{run, wait_event, Proxy, TempDir, WAIT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The issuer's signing key and the JWKS the proxy verifies with.
struct Signer {
    key: EncodingKey,
    jwks: Value,
}

impl Signer {
    fn new() -> Signer {
        let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
        let point = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(
            &secret.public_key(),
            false,
        );
        let pem = secret.to_pkcs8_pem(LineEnding::LF).unwrap();
        Signer {
            key: EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
            jwks: json!({ "keys": [{
                "kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig",
                "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()),
                "y": URL_SAFE_NO_PAD.encode(point.y().unwrap()),
            }]}),
        }
    }

    /// An access token for `orders`, bound to the certificate `x5t` (RFC 8705 §3.1).
    fn token(&self, x5t: &str) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("k1".into());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let claims = json!({
            "iss": "https://issuer.example", "sub": "svc", "client_id": "svc",
            "scope": "orders", "iat": now, "exp": now + 600,
            "cnf": { "x5t#S256": x5t },
        });
        jsonwebtoken::encode(&header, &claims, &self.key).unwrap()
    }
}

/// A client certificate and its key.
struct ClientCert {
    der: Vec<u8>,
    pem: String,
    key: Vec<u8>,
}

impl ClientCert {
    fn self_signed(name: &str) -> ClientCert {
        let made = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
        ClientCert {
            der: made.cert.der().to_vec(),
            pem: made.cert.pem(),
            key: made.signing_key.serialize_der(),
        }
    }

    fn x5t(&self) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(&self.der))
    }
}

/// A CA that issues server and client certificates.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let pem = params.self_signed(&key).unwrap().pem();
        Ca {
            pem,
            issuer: Issuer::new(params, key),
        }
    }

    fn issue(&self, name: &str) -> ClientCert {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        ClientCert {
            der: cert.der().to_vec(),
            pem: cert.pem(),
            key: key.serialize_der(),
        }
    }
}

/// The upstream: a resource at `/orders`, and a token endpoint at `/token` that issues a
/// token bound to the thumbprint in the form's `bind` (as an authorization server does
/// with the certificate it was shown).
async fn upstream(signer: Arc<Signer>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let signer = signer.clone();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                        let signer = signer.clone();
                        async move {
                            let path = req.uri().path().to_owned();
                            let seen = |name: &str| {
                                req.headers()
                                    .get(name)
                                    .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                            };
                            let certificate_headers = json!({
                                "x-client-cert": seen("x-client-cert"),
                                "x-front-cert": seen("x-front-cert"),
                            });
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            let answer = if path == "/token" {
                                let form = String::from_utf8_lossy(&body).into_owned();
                                let x5t = form
                                    .split('&')
                                    .find_map(|p| p.strip_prefix("bind="))
                                    .unwrap_or_default()
                                    .to_owned();
                                json!({
                                    "access_token": signer.token(&x5t),
                                    "token_type": "Bearer", "expires_in": 600,
                                })
                                .to_string()
                            } else if path == "/certificate-headers" {
                                certificate_headers.to_string()
                            } else {
                                "\"ok\"".to_owned()
                            };
                            let mut response = Response::new(Full::new(Bytes::from(answer)));
                            response
                                .headers_mut()
                                .insert("content-type", "application/json".parse().unwrap());
                            Ok::<_, Infallible>(response)
                        }
                    });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

struct Setup {
    dir: TempDir,
    signer: Arc<Signer>,
    server_ca: Ca,
    proxy: Proxy,
}

impl Setup {
    /// The proxy in front of the upstream, with `proxy_keys` in `[proxy]` and `tls` (a
    /// `[proxy.tls]` body without the server's pair, or `None` for a plain listener).
    async fn start(name: &str, proxy_keys: &str, tls: Option<&str>) -> Setup {
        let dir = TempDir::new(name);
        let signer = Arc::new(Signer::new());
        let upstream = upstream(signer.clone()).await;
        let jwks = dir.write("jwks.json", &signer.jwks.to_string());
        let server_ca = Ca::new("server CA");
        let server = {
            let key = KeyPair::generate().unwrap();
            let params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
            let cert = params.signed_by(&key, &server_ca.issuer).unwrap();
            (
                dir.write("server.pem", &cert.pem()),
                dir.write("server.key", &key.serialize_pem()),
            )
        };
        let tls = match tls {
            Some(extra) => format!(
                "[proxy.tls]\ncertificate = {:?}\nkey = {:?}\n{extra}\n",
                server.0.to_str().unwrap(),
                server.1.to_str().unwrap()
            ),
            None => String::new(),
        };
        let config = dir.write(
            "proxy.toml",
            &format!(
                "[proxy]\nupstream = \"http://{upstream}\"\n{proxy_keys}\n{tls}\n\
                 [jwt]\njwks_file = {:?}\nissuers = [\"https://issuer.example\"]\n\
                 [[route]]\npath = \"/orders/list\"\nscopes = [\"orders\"]\nenforce = true\n\
                 [[writer]]\ntype = \"jsonl\"\npath = {:?}\n",
                jwks.to_str().unwrap(),
                dir.path("audit.jsonl").to_str().unwrap(),
            ),
        );
        let proxy = Proxy::start(&["--config", config.to_str().unwrap()], &[]);
        Setup {
            dir,
            signer,
            server_ca,
            proxy,
        }
    }

    /// A TLS connection to the proxy, showing `certificate` if given; `None` when the
    /// proxy refuses the handshake.
    async fn connect(
        &self,
        certificate: Option<&ClientCert>,
    ) -> Option<tokio_rustls::client::TlsStream<TcpStream>> {
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(self.server_ca.pem.as_bytes()).unwrap())
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
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = TcpStream::connect(self.proxy.addr).await.unwrap();
        let name = rustls::pki_types::ServerName::IpAddress(self.proxy.addr.ip().into());
        // With TLS 1.3 a refused client certificate only shows when the answer is read.
        connector.connect(name, tcp).await.ok()
    }

    /// `method path` over TLS with `certificate`: the status, or `None` when the
    /// connection was refused.
    async fn tls_request(
        &self,
        certificate: Option<&ClientCert>,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: &str,
    ) -> Option<u16> {
        let stream = self.connect(certificate).await?;
        send(stream, method, path, headers, body).await
    }

    async fn plain_request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: &str,
    ) -> Option<u16> {
        let stream = TcpStream::connect(self.proxy.addr).await.unwrap();
        send(stream, method, path, headers, body).await
    }

    /// The event of the request carrying `marker` in its `x-request-id`.
    async fn event(&self, marker: &str) -> Value {
        let marker = marker.to_owned();
        wait_event(&self.dir.path("audit.jsonl"), &marker.clone(), move |e| {
            e["request_id"] == marker.as_str()
        })
        .await
    }
}

/// Writes one HTTP/1.1 request and reads the status of its answer.
async fn send<S>(
    stream: S,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &str,
) -> Option<u16>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let answer = exchange(stream, method, path, headers, body).await?;
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
}

/// Writes one HTTP/1.1 request and reads the whole answer; `None` when there is none.
async fn exchange<S>(
    mut stream: S,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &str,
) -> Option<String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nhost: proxy\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut answer = Vec::new();
    // A TLS peer may close without close_notify once the response is complete.
    let _ = tokio::time::timeout(WAIT, stream.read_to_end(&mut answer))
        .await
        .expect("the proxy answers");
    (!answer.is_empty()).then(|| String::from_utf8_lossy(&answer).into_owned())
}

fn headers(id: &str, token: Option<&str>) -> Vec<(&'static str, String)> {
    let mut headers = vec![("x-request-id", id.to_owned())];
    if let Some(token) = token {
        headers.push(("authorization", format!("Bearer {token}")));
    }
    headers
}

#[tokio::test]
async fn the_tls_listener_matches_any_client_certificate_with_the_tokens_binding() {
    let setup = Setup::start("mtls-any", "", Some("client_certificates = \"optional\"")).await;
    let cert = ClientCert::self_signed("svc.example");
    let thief = ClientCert::self_signed("thief.example");
    let token = setup.signer.token(&cert.x5t());

    let cases = [
        ("right", Some(&cert), 200, "valid"),
        ("other", Some(&thief), 200, "key_mismatch"),
        ("none", None, 200, "missing"),
    ];
    for (id, certificate, status, proof) in cases {
        let got = setup
            .tls_request(
                certificate,
                "GET",
                "/orders",
                &headers(id, Some(&token)),
                "",
            )
            .await;
        assert_eq!(got, Some(status), "{id}");
        let e = setup.event(id).await;
        assert_eq!(e["token"]["verdict"], "valid", "{e}");
        let binding = &e["token"]["binding"];
        assert_eq!(binding["method"], "mtls", "{e}");
        assert_eq!(binding["x5t#S256"], cert.x5t().as_str());
        assert_eq!(binding["proof"], proof, "{id}: {e}");
        assert!(!e.to_string().contains(&cert.pem[30..90]));
    }
    assert_eq!(
        setup.event("other").await["token"]["binding"]["proof_x5t#S256"],
        thief.x5t().as_str()
    );

    // The enforcing route: refused without the certificate, served with it.
    let refused = setup
        .tls_request(
            Some(&thief),
            "GET",
            "/orders/list",
            &headers("enforced-other", Some(&token)),
            "",
        )
        .await;
    assert_eq!(refused, Some(401));
    assert_eq!(
        setup.event("enforced-other").await["error"]["code"],
        "invalid_token"
    );
    let served = setup
        .tls_request(
            Some(&cert),
            "GET",
            "/orders/list",
            &headers("enforced-right", Some(&token)),
            "",
        )
        .await;
    assert_eq!(served, Some(200));

    // The token endpoint: a self-signed certificate and a client_id is RFC 8705 §2.2, and
    // the issued token is bound to the certificate shown.
    let form = format!(
        "grant_type=client_credentials&client_id=svc&bind={}",
        cert.x5t()
    );
    let mut token_headers = headers("token", None);
    token_headers.push((
        "content-type",
        "application/x-www-form-urlencoded".to_owned(),
    ));
    let status = setup
        .tls_request(Some(&cert), "POST", "/token", &token_headers, &form)
        .await;
    assert_eq!(status, Some(200));
    let e = setup.event("token").await;
    assert_eq!(e["kind"], "AccessTokenIssued", "{e}");
    assert_eq!(e["client_auth"], "self_signed_tls_client_auth");
    assert_eq!(
        e["token"]["binding"],
        json!({ "method": "mtls", "x5t#S256": cert.x5t(), "proof": "valid" })
    );
}

#[tokio::test]
async fn the_proxy_passes_the_tls_client_certificate_upstream_and_drops_forged_ones() {
    let setup = Setup::start(
        "mtls-forward",
        "trusted_proxies = [\"10.0.0.0/8\"]\nclient_certificate_header = \"x-front-cert\"",
        Some("client_certificates = \"optional\"\nforward_client_certificate = \"x-client-cert\""),
    )
    .await;
    let cert = ClientCert::self_signed("svc.example");
    // Both headers forged by the client itself (127.0.0.1 is no trusted proxy here).
    let forged = [
        ("x-client-cert", "forged".to_owned()),
        ("x-front-cert", "forged".to_owned()),
    ];
    let mut seen = Vec::new();
    for certificate in [Some(&cert), None] {
        let stream = setup.connect(certificate).await.unwrap();
        let answer = exchange(stream, "GET", "/certificate-headers", &forged, "")
            .await
            .unwrap();
        let body = answer.split_once("\r\n\r\n").unwrap().1;
        seen.push(serde_json::from_str::<Value>(body).unwrap());
    }
    let passed = oauth_audit::mtls::ClientCertificate::from_header_value(
        seen[0]["x-client-cert"].as_str().unwrap().as_bytes(),
    )
    .unwrap()
    .unwrap();
    assert_eq!(passed.thumbprint(), cert.x5t());
    assert_eq!(seen[0]["x-front-cert"], Value::Null);
    assert_eq!(
        seen[1],
        json!({ "x-client-cert": null, "x-front-cert": null })
    );
}

#[tokio::test]
async fn a_client_ca_admits_only_its_certificates_and_they_are_tls_client_auth() {
    let client_ca = Ca::new("client CA");
    let dir = TempDir::new("mtls-ca-file");
    let ca_file = dir.write("clients.pem", &client_ca.pem);
    let setup = Setup::start(
        "mtls-ca",
        "",
        Some(&format!(
            "client_certificates = \"required\"\nclient_ca_file = {:?}",
            ca_file.to_str().unwrap()
        )),
    )
    .await;
    let issued = client_ca.issue("svc.example");
    let form = format!(
        "grant_type=client_credentials&client_id=svc&bind={}",
        issued.x5t()
    );
    let mut token_headers = headers("ca-token", None);
    token_headers.push((
        "content-type",
        "application/x-www-form-urlencoded".to_owned(),
    ));
    let status = setup
        .tls_request(Some(&issued), "POST", "/token", &token_headers, &form)
        .await;
    assert_eq!(status, Some(200));
    let e = setup.event("ca-token").await;
    assert_eq!(e["client_auth"], "tls_client_auth");
    assert_eq!(e["token"]["binding"]["proof"], "valid");

    // No certificate, or one the CA did not issue: no connection at all.
    for (name, certificate) in [
        ("none", None),
        ("self-signed", Some(ClientCert::self_signed("svc.example"))),
    ] {
        let answer = setup
            .tls_request(
                certificate.as_ref(),
                "GET",
                "/orders",
                &headers(name, None),
                "",
            )
            .await;
        assert_eq!(answer, None, "{name}");
    }
}

#[tokio::test]
async fn a_trusted_front_proxys_header_carries_the_certificate() {
    let setup = Setup::start(
        "mtls-header",
        "trusted_proxies = [\"127.0.0.1\"]\nclient_certificate_header = \"x-client-cert\"",
        None,
    )
    .await;
    let cert = ClientCert::self_signed("svc.example");
    let token = setup.signer.token(&cert.x5t());
    let escaped =
        percent_encoding::utf8_percent_encode(&cert.pem, percent_encoding::NON_ALPHANUMERIC)
            .to_string();
    let mut with_cert = headers("header-right", Some(&token));
    with_cert.push(("x-client-cert", escaped));
    assert_eq!(
        setup
            .plain_request("GET", "/orders/list", &with_cert, "")
            .await,
        Some(200)
    );
    assert_eq!(
        setup.event("header-right").await["token"]["binding"]["proof"],
        "valid"
    );
    let mut garbage = headers("header-garbage", Some(&token));
    garbage.push(("x-client-cert", "not-a-certificate!".to_owned()));
    assert_eq!(
        setup.plain_request("GET", "/orders", &garbage, "").await,
        Some(200)
    );
    assert_eq!(
        setup.event("header-garbage").await["token"]["binding"]["proof"],
        "malformed"
    );
}

#[test]
fn the_header_without_trusted_proxies_is_refused_at_startup() {
    let dir = TempDir::new("mtls-untrusted");
    let config = dir.write(
        "proxy.toml",
        "[proxy]\nupstream = \"http://127.0.0.1:1\"\nclient_certificate_header = \"x-client-cert\"\n",
    );
    let out = run(&["check-config", config.to_str().unwrap()], &[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("client_certificate_header"), "{stderr}");
    assert!(stderr.contains("trusted_proxies"), "{stderr}");
}

/// The header a trusted front proxy passes its client's certificate in and the one this
/// proxy writes its TLS peer's into cannot be one: the second would replace the first, and
/// the upstream would get another certificate than the one the layer checked tokens against.
#[test]
fn one_header_for_the_front_proxys_certificate_and_this_proxys_is_refused() {
    let dir = TempDir::new("mtls-same-header");
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let pem = dir.write("server.pem", &cert.pem());
    let key = dir.write("server.key", &key.serialize_pem());
    let config = |forward: &str| {
        format!(
            "[proxy]\nupstream = \"http://127.0.0.1:1\"\ntrusted_proxies = [\"10.0.0.0/8\"]\nclient_certificate_header = \"X-Client-Cert\"\n\
             [proxy.tls]\ncertificate = {:?}\nkey = {:?}\nclient_certificates = \"optional\"\nforward_client_certificate = \"{forward}\"\n",
            pem.to_str().unwrap(),
            key.to_str().unwrap()
        )
    };
    let same = dir.write("same.toml", &config("x-client-cert"));
    let out = run(&["check-config", same.to_str().unwrap()], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "forward_client_certificate names the same header as proxy.client_certificate_header"
        ),
        "{stderr}"
    );
    let other = dir.write("other.toml", &config("x-forwarded-client-cert"));
    let out = run(&["check-config", other.to_str().unwrap()], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
