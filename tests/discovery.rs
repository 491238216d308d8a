//! `oauth::Discovery` against metadata served over real HTTP on 127.0.0.1:0: OpenID Connect
//! first, RFC 8414 (with its path insertion) second, the issuer checked, sizes bounded,
//! slow servers timed out; and the layer configured from what it read.

#![cfg(all(feature = "discovery", feature = "config"))]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use oauth_audit::config::AuditLayerConfig;
use oauth_audit::oauth::{Discovery, DiscoveryError, Endpoint, Endpoints, MetadataError};
use serde_json::json;

/// What the metadata server answers, by path; the paths it was asked for.
#[derive(Clone, Default)]
struct Served {
    answers: Arc<Mutex<Vec<(String, StatusCode, String)>>>,
    asked: Arc<Mutex<Vec<String>>>,
}

async fn answer(State(served): State<Served>, uri: Uri) -> Response {
    served.asked.lock().unwrap().push(uri.path().to_owned());
    if uri.path() == "/slow/.well-known/openid-configuration" {
        std::future::pending::<()>().await;
    }
    let answers = served.answers.lock().unwrap().clone();
    match answers.into_iter().find(|(p, _, _)| p == uri.path()) {
        Some((_, status, body)) => (status, body).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn server() -> (String, Served) {
    let served = Served::default();
    let app = Router::new().fallback(answer).with_state(served.clone());
    let addr = support::serve(app).await;
    (format!("http://{addr}"), served)
}

fn serve(served: &Served, path: &str, status: StatusCode, body: String) {
    served
        .answers
        .lock()
        .unwrap()
        .push((path.to_owned(), status, body));
}

#[tokio::test]
async fn openid_configuration_first_and_rfc8414_with_the_path_inserted() {
    let (base, served) = server().await;
    let issuer = format!("{base}/tenant");
    serve(
        &served,
        "/.well-known/oauth-authorization-server/tenant",
        StatusCode::OK,
        json!({
            "issuer": issuer,
            "token_endpoint": format!("{issuer}/oauth/token"),
            "pushed_authorization_request_endpoint": format!("{issuer}/oauth/par"),
            "userinfo_endpoint": "https://api.example/userinfo",
            "jwks_uri": format!("{issuer}/keys"),
        })
        .to_string(),
    );
    let metadata = Discovery::new(issuer.clone()).fetch().await.unwrap();
    assert_eq!(
        *served.asked.lock().unwrap(),
        [
            "/tenant/.well-known/openid-configuration",
            "/.well-known/oauth-authorization-server/tenant"
        ]
    );
    assert_eq!(metadata.issuer(), issuer);
    assert_eq!(metadata.jwks_uri(), Some(format!("{issuer}/keys").as_str()));

    let endpoints = Endpoints::builder()
        .revocation("/revoke-here")
        .discovered(&metadata)
        .build()
        .unwrap();
    assert_eq!(
        endpoints.lookup("/tenant/oauth/token"),
        Some(Endpoint::Token)
    );
    assert_eq!(
        endpoints.lookup("/tenant/oauth/par"),
        Some(Endpoint::PushedAuthorization)
    );
    assert_eq!(endpoints.lookup("/revoke-here"), Some(Endpoint::Revocation));
    assert_eq!(endpoints.lookup("/token"), None, "no default paths");
    assert!(
        !endpoints.is_assumed(Endpoint::Token),
        "on the issuer's origin"
    );
    assert!(
        endpoints.is_assumed(Endpoint::UserInfo),
        "on another origin: only assumed"
    );
    assert_eq!(endpoints.lookup("/userinfo"), Some(Endpoint::UserInfo));

    // The OpenID Connect location is preferred when it answers.
    serve(
        &served,
        "/tenant/.well-known/openid-configuration",
        StatusCode::OK,
        json!({"issuer": issuer, "token_endpoint": format!("{issuer}/connect/token")}).to_string(),
    );
    let metadata = Discovery::new(issuer.clone()).fetch().await.unwrap();
    assert_eq!(
        metadata.token_endpoint.as_deref(),
        Some(format!("{issuer}/connect/token").as_str())
    );
}

#[tokio::test]
async fn documents_that_cannot_be_used_are_refused_with_what_is_wrong() {
    let (base, served) = server().await;
    let at = |name: &str| format!("/{name}/.well-known/openid-configuration");

    serve(
        &served,
        &at("other"),
        StatusCode::OK,
        json!({"issuer": "https://attacker.example", "token_endpoint": "https://attacker.example/token"}).to_string(),
    );
    serve(
        &served,
        &at("html"),
        StatusCode::OK,
        "<html>sign in</html>".into(),
    );
    serve(
        &served,
        &at("noissuer"),
        StatusCode::OK,
        json!({"token_endpoint": "https://as.example/token"}).to_string(),
    );
    serve(
        &served,
        &at("huge"),
        StatusCode::OK,
        format!(r#"{{"issuer":"x","pad":"{}"}}"#, "a".repeat(300 * 1024)),
    );
    serve(
        &served,
        &at("down"),
        StatusCode::SERVICE_UNAVAILABLE,
        String::new(),
    );

    let fetch = |name: &str| {
        let discovery = Discovery::new(format!("{base}/{name}"));
        async move { discovery.fetch().await }
    };
    let err = fetch("other").await.unwrap_err();
    assert!(
        matches!(
            &err,
            DiscoveryError::Invalid {
                source: MetadataError::IssuerMismatch { .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("attacker.example"), "{err}");
    assert!(err.to_string().contains("RFC 8414"), "{err}");

    let err = fetch("html").await.unwrap_err();
    assert!(matches!(err, DiscoveryError::NotJson { .. }), "{err}");
    let err = fetch("noissuer").await.unwrap_err();
    assert!(
        matches!(
            err,
            DiscoveryError::Invalid {
                source: MetadataError::Missing("issuer"),
                ..
            }
        ),
        "{err}"
    );
    let err = fetch("huge").await.unwrap_err();
    assert!(matches!(err, DiscoveryError::TooLarge { .. }), "{err}");
    let err = fetch("down").await.unwrap_err();
    match &err {
        DiscoveryError::Status {
            status,
            fallback_status,
            ..
        } => assert_eq!((*status, *fallback_status), (503, 404)),
        other => panic!("{other}"),
    }
    assert!(
        err.to_string().contains("oauth-authorization-server/down"),
        "{err}"
    );

    let err = Discovery::new(format!("{base}/slow"))
        .timeout(Duration::from_millis(200))
        .fetch()
        .await
        .unwrap_err();
    assert!(matches!(err, DiscoveryError::Request { .. }), "{err}");
    assert!(err.to_string().contains("no answer within"), "{err}");
}

#[tokio::test]
async fn the_layer_configuration_takes_what_it_does_not_set() {
    let (base, served) = server().await;
    serve(
        &served,
        "/.well-known/openid-configuration",
        StatusCode::OK,
        json!({
            "issuer": base,
            "token_endpoint": format!("{base}/oauth2/token"),
            "end_session_endpoint": format!("{base}/logout"),
            "jwks_uri": format!("{base}/jwks"),
        })
        .to_string(),
    );
    let mut config: AuditLayerConfig = toml_like(&format!(
        r#"{{"endpoints": {{"issuer_url": "{base}", "end_session": ["/signout"]}}, "jwt": {{"issuers": ["https://explicit.example"]}}}}"#
    ));
    config.discover().await.unwrap();
    let jwks = config.jwt.jwks_url.as_ref().map(|u| u.0.clone());
    assert_eq!(jwks, Some(format!("{base}/jwks")));
    assert_eq!(
        config.jwt.issuers,
        ["https://explicit.example"],
        "explicit wins"
    );
    let endpoints = config.endpoints.build().unwrap();
    assert_eq!(endpoints.lookup("/oauth2/token"), Some(Endpoint::Token));
    assert_eq!(endpoints.lookup("/signout"), Some(Endpoint::EndSession));
    assert_eq!(endpoints.lookup("/logout"), None, "explicit wins");
}

fn toml_like(json: &str) -> AuditLayerConfig {
    serde_json::from_str(json).unwrap()
}
