//! A whole exchange through `AuditLayer`: a request and a response chosen by the fuzzer
//! (method, path, forwarding and credential headers, form or JSON bodies, redirects,
//! `WWW-Authenticate`), to an OAuth endpoint, a login route or a protected route.
//!
//! Checks the layer's promises on every input: the handler sees the request exactly as it
//! was sent, the client sees the response exactly as the handler wrote it, exactly one
//! event is written, it is valid JSON of bounded size, and `source.ip` is the socket peer or
//! an address that a forwarding header named.
#![no_main]

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, Response};
use http_body_util::{BodyExt, Full};
use jsonwebtoken::Algorithm;
use libfuzzer_sys::fuzz_target;
use oauth_audit::oauth::Endpoints;
use oauth_audit::token::TokenInspector;
use oauth_audit::writer::{Auditor, MemoryWriter};
use oauth_audit::{AuditLayer, PeerAddr, RequestBody};
use tower::{service_fn, Layer, ServiceExt};

/// Request headers worth the fuzzer's attention: every one of them is parsed by the layer.
const REQUEST_HEADERS: &[&str] = &[
    "authorization",
    "forwarded",
    "x-forwarded-for",
    "x-real-ip",
    "content-type",
    "user-agent",
    "x-request-id",
    "traceparent",
    "x-revocation-reason",
    "dpop",
    "x-http-method-override",
    "cookie",
];
const RESPONSE_HEADERS: &[&str] = &[
    "content-type",
    "location",
    "www-authenticate",
    "cache-control",
];
const PATHS: &[&str] = &[
    "/token",
    "/revoke",
    "/introspect",
    "/authorize",
    "/login",
    "/api/orders",
    "/",
];
const METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"];

#[derive(Arbitrary, Debug)]
struct Exchange {
    method: u8,
    custom_method: Option<String>,
    path: u8,
    path_suffix: String,
    query: Option<String>,
    headers: Vec<(u8, Vec<u8>)>,
    body: Vec<u8>,
    status: u16,
    response_headers: Vec<(u8, Vec<u8>)>,
    response_body: Vec<u8>,
    peer: [u8; 4],
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    })
}

fn pick<'a>(list: &[&'a str], index: u8) -> &'a str {
    list[index as usize % list.len()]
}

fuzz_target!(|exchange: Exchange| {
    let method = match &exchange.custom_method {
        Some(custom) => match http::Method::from_bytes(custom.as_bytes()) {
            Ok(method) => method,
            Err(_) => return,
        },
        None => {
            http::Method::from_bytes(pick(METHODS, exchange.method).as_bytes()).expect("method")
        }
    };
    let mut uri = format!("{}{}", pick(PATHS, exchange.path), exchange.path_suffix);
    if let Some(query) = &exchange.query {
        uri.push('?');
        uri.push_str(query);
    }
    let Ok(uri) = uri.parse::<http::Uri>() else {
        return;
    };
    let Ok(status) = http::StatusCode::from_u16(exchange.status) else {
        return;
    };

    let mut request = Request::builder().method(method).uri(uri);
    let mut forwarding_text = String::new();
    for (name, value) in &exchange.headers {
        let name = pick(REQUEST_HEADERS, *name);
        let Ok(value) = HeaderValue::from_bytes(value) else {
            return;
        };
        if matches!(name, "forwarded" | "x-forwarded-for" | "x-real-ip") {
            forwarding_text.push_str(&String::from_utf8_lossy(value.as_bytes()));
            forwarding_text.push('\n');
        }
        request = request.header(HeaderName::from_static(name), value);
    }
    let peer = SocketAddr::from((exchange.peer, 40000));
    let Ok(mut request) = request.body(Full::new(Bytes::from(exchange.body.clone()))) else {
        return;
    };
    request.extensions_mut().insert(PeerAddr(peer));

    let mut response = Response::builder().status(status);
    for (name, value) in &exchange.response_headers {
        let Ok(value) = HeaderValue::from_bytes(value) else {
            return;
        };
        response = response.header(
            HeaderName::from_static(pick(RESPONSE_HEADERS, *name)),
            value,
        );
    }
    let Ok(response) = response.body(Full::new(Bytes::from(exchange.response_body.clone()))) else {
        return;
    };
    let (response_parts, response_body) = response.into_parts();

    runtime().block_on(async move {
        let memory = MemoryWriter::new();
        let auditor = Auditor::new(memory.clone());
        let layer = AuditLayer::builder(auditor.clone())
            .endpoints(
                Endpoints::builder()
                    .login("/login")
                    .build()
                    .expect("endpoints"),
            )
            .trusted_proxies(["10.0.0.0/8", "127.0.0.1/32"])
            .token_inspector(
                TokenInspector::builder()
                    .hmac_secret(Algorithm::HS256, b"fuzzing-secret-of-a-reasonable-length")
                    .build()
                    .expect("inspector"),
            )
            .build()
            .expect("layer");
        let sent = request.headers().clone();
        let sent_uri = request.uri().clone();
        let sent_method = request.method().clone();
        let sent_body = exchange.body.clone();
        let handler = service_fn(move |req: Request<RequestBody<Full<Bytes>>>| {
            let sent = sent.clone();
            let (sent_uri, sent_method, sent_body) =
                (sent_uri.clone(), sent_method.clone(), sent_body.clone());
            let (parts, body) = (response_parts.clone(), response_body.clone());
            async move {
                assert_eq!(
                    req.method(),
                    sent_method,
                    "method reaches the handler as sent"
                );
                assert_eq!(req.uri(), &sent_uri, "uri reaches the handler as sent");
                assert_eq!(req.headers(), &sent, "headers reach the handler as sent");
                let got = req.into_body().collect().await.expect("body").to_bytes();
                assert_eq!(
                    got.as_ref(),
                    &sent_body[..],
                    "body reaches the handler byte for byte"
                );
                Ok::<_, Infallible>(Response::from_parts(parts, body))
            }
        });
        let answer = layer
            .layer(handler)
            .oneshot(request)
            .await
            .expect("infallible");
        assert_eq!(answer.status(), status, "status passes through");
        let got = answer.into_body().collect().await.expect("body").to_bytes();
        assert_eq!(
            got.as_ref(),
            &exchange.response_body[..],
            "response body passes through"
        );
        auditor.shutdown().await;

        let events = memory.json();
        assert_eq!(
            events.len(),
            1,
            "exactly one event per exchange: {events:?}"
        );
        let event = &events[0];
        let line = serde_json::to_string(event).expect("event serialises");
        assert!(
            line.len() < 96 * 1024,
            "event size is bounded: {} bytes",
            line.len()
        );
        if let Some(ip) = event.pointer("/source/ip").and_then(|ip| ip.as_str()) {
            let ip: IpAddr = ip.parse().expect("source.ip is an address");
            assert!(
                ip == peer.ip() || named_addresses(&forwarding_text).contains(&ip.to_canonical()),
                "source.ip {ip} came from neither the peer nor a forwarding header"
            );
        }
    });
});

/// Every address written anywhere in forwarding header text, in any of the spellings the
/// headers allow (`1.2.3.4`, `1.2.3.4:80`, `[2001:db8::1]:80`, `2001:db8::1`).
fn named_addresses(text: &str) -> Vec<IpAddr> {
    text.split(|c: char| ",;=\" \t\n".contains(c))
        .flat_map(|token| {
            let token = token.trim_matches(|c| c == '[' || c == ']');
            let bracketed = token.strip_prefix('[').and_then(|t| t.split(']').next());
            [
                token.parse::<IpAddr>().ok(),
                token.parse::<SocketAddr>().ok().map(|a| a.ip()),
                token
                    .rsplit_once(':')
                    .and_then(|(ip, _)| ip.parse::<IpAddr>().ok()),
                token
                    .split(']')
                    .next()
                    .and_then(|t| t.trim_start_matches('[').parse().ok()),
                bracketed.and_then(|t| t.parse().ok()),
            ]
        })
        .flatten()
        .map(|ip: IpAddr| ip.to_canonical())
        .collect()
}
