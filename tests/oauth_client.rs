//! A real OAuth client (the `oauth2` crate, v5) drives the endpoints through the layer:
//! client credentials, password, refresh, authorization code + PKCE, device code polling,
//! revocation and introspection.

mod support;

use std::time::Duration;

use oauth2::basic::BasicClient;
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    DeviceAuthorizationUrl, IntrospectionUrl, PkceCodeChallenge, RedirectUrl,
    ResourceOwnerPassword, ResourceOwnerUsername, RevocationUrl, Scope, StandardRevocableToken,
    TokenIntrospectionResponse, TokenResponse, TokenUrl,
};
use oauth_audit::oauth::Endpoints;
use oauth_audit::AuditLayer;
use serde_json::json;
use support::auth_server::{AuthServer, REDIRECT};
use support::oauth2_http::{fp, Http};
use support::{events, memory_auditor, serve};

#[tokio::test]
async fn oauth2_crate_flows_are_audited() {
    let (auditor, memory) = memory_auditor();
    let server = AuthServer::new();
    let layer = AuditLayer::builder(auditor)
        .endpoints(Endpoints::builder().login("/login").build().unwrap())
        .build()
        .unwrap();
    let addr = serve(server.router().layer(layer)).await;
    let url = |path: &str| format!("http://{addr}{path}");
    let reqwest_client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let http = Http(reqwest_client.clone());

    let web = BasicClient::new(ClientId::new("web".into()))
        .set_client_secret(ClientSecret::new("web-secret".into()))
        .set_auth_uri(AuthUrl::new(url("/authorize")).unwrap())
        .set_token_uri(TokenUrl::new(url("/token")).unwrap())
        .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap())
        .set_revocation_url(RevocationUrl::new(format!("https://{addr}/revoke")).unwrap());
    let svc = BasicClient::new(ClientId::new("svc".into()))
        .set_client_secret(ClientSecret::new("svc-secret".into()))
        .set_token_uri(TokenUrl::new(url("/token")).unwrap());
    let rs = BasicClient::new(ClientId::new("rs".into()))
        .set_client_secret(ClientSecret::new("rs-secret".into()))
        .set_token_uri(TokenUrl::new(url("/token")).unwrap())
        .set_introspection_url(IntrospectionUrl::new(url("/introspect")).unwrap());
    let tv = BasicClient::new(ClientId::new("tv".into()))
        .set_auth_type(AuthType::RequestBody)
        .set_token_uri(TokenUrl::new(url("/token")).unwrap())
        .set_device_authorization_url(
            DeviceAuthorizationUrl::new(url("/device_authorization")).unwrap(),
        );

    // 1. client credentials (HTTP Basic)
    let cc = svc
        .exchange_client_credentials()
        .add_scope(Scope::new("read".into()))
        .request_async(&http)
        .await
        .unwrap();
    // 2. password, 3. refresh
    let password = web
        .exchange_password(
            &ResourceOwnerUsername::new("alice".into()),
            &ResourceOwnerPassword::new("wonderland".into()),
        )
        .add_scope(Scope::new("profile".into()))
        .request_async(&http)
        .await
        .unwrap();
    let presented = password.refresh_token().unwrap().clone();
    let refreshed = web
        .exchange_refresh_token(&presented)
        .request_async(&http)
        .await
        .unwrap();
    // 4. authorization code + PKCE
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (authorize_url, state) = web
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("openid".into()))
        .set_pkce_challenge(challenge)
        .url();
    let redirect = reqwest_client
        .get(format!("{authorize_url}&session=alice"))
        .send()
        .await
        .unwrap();
    let location = redirect.headers()["location"].to_str().unwrap().to_owned();
    let location = url::Url::parse(&location).unwrap();
    let code = location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let verifier_secret = verifier.secret().clone();
    let code_tokens = web
        .exchange_code(AuthorizationCode::new(code.clone()))
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    // 5. device code, polled until the user approves
    let device: oauth2::StandardDeviceAuthorizationResponse = tv
        .exchange_device_code()
        .add_scope(Scope::new("read".into()))
        .request_async(&http)
        .await
        .unwrap();
    let device_tokens = tv
        .exchange_device_access_token(&device)
        .request_async(
            &http,
            |_| tokio::time::sleep(Duration::from_millis(5)),
            None,
        )
        .await
        .unwrap();
    // 6. introspection, 7. revocation
    let at = code_tokens.access_token().clone();
    let introspected = rs.introspect(&at).request_async(&http).await.unwrap();
    assert!(introspected.active());
    web.revoke_token(StandardRevocableToken::AccessToken(at.clone()))
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();

    // 4 + 2 authorize/code + 1 device_authorization + 3 device polls recorded + 2
    let all = events(&memory, 11).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let all_now = memory.json();
    assert_eq!(all_now.len(), all.len(), "no event per repeated poll");
    let kinds: Vec<_> = all
        .iter()
        .map(|e| {
            (
                e["http"]["path"].as_str().unwrap(),
                e["kind"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("/token", "AccessTokenIssued"),
            ("/token", "AccessTokenIssued"),
            ("/token", "AccessTokenIssued"),
            ("/authorize", "AuthorizationGranted"),
            ("/token", "AccessTokenIssued"),
            ("/device_authorization", "ResourceAccessed"),
            ("/token", "TokenRequestFailed"),
            ("/token", "TokenRequestFailed"),
            ("/token", "AccessTokenIssued"),
            ("/introspect", "TokenIntrospected"),
            ("/revoke", "TokenRevoked"),
        ]
    );
    let e = &all[0];
    assert_eq!(e["grant_type"], "client_credentials");
    assert_eq!(e["client_auth"], "client_secret_basic");
    assert_eq!(e["actor"], json!({"client_id": "svc", "kind": "client"}));
    assert_eq!(e["token"]["fingerprint"], fp(cc.access_token().secret()));
    assert_eq!(e["scopes"]["granted"], json!(["read"]));
    let e = &all[1];
    assert_eq!(e["grant_type"], "password");
    assert_eq!(e["actor"]["subject"], "alice");
    assert_eq!(e["refresh_token"]["fingerprint"], fp(presented.secret()));
    let e = &all[2];
    assert_eq!(e["grant_type"], "refresh_token");
    assert_eq!(
        e["oauth"]["presented_refresh_token"]["fingerprint"],
        fp(presented.secret())
    );
    assert_eq!(
        e["refresh_token"]["fingerprint"],
        fp(refreshed.refresh_token().unwrap().secret())
    );
    let e = &all[3];
    assert_eq!(e["actor"]["client_id"], "web");
    assert_eq!(e["oauth"]["pkce_method"], "S256");
    assert_eq!(e["redirect_uri"], REDIRECT);
    let e = &all[4];
    assert_eq!(e["grant_type"], "authorization_code");
    assert_eq!(e["oauth"]["pkce_method"], "verifier_sent");
    assert_eq!(e["actor"]["subject"], "alice");
    assert_eq!(e["token"]["fingerprint"], fp(at.secret()));
    assert_eq!(all[6]["error"]["code"], "authorization_pending");
    assert_eq!(all[7]["error"]["code"], "slow_down");
    assert_eq!(all[7]["oauth"]["repeated"], 2);
    assert_eq!(
        all[8]["token"]["fingerprint"],
        fp(device_tokens.access_token().secret())
    );
    assert_eq!(all[8]["actor"]["client_id"], "tv");
    let e = &all[9];
    assert_eq!(e["actor"]["client_id"], "rs");
    assert_eq!(e["token"]["active"], true);
    assert_eq!(e["token"]["subject"], "alice");
    assert_eq!(e["token"]["fingerprint"], fp(at.secret()));
    let e = &all[10];
    assert_eq!(e["token"]["fingerprint"], fp(at.secret()));
    assert_eq!(e["token"]["type_hint"], "access_token");

    let raw = memory.json_lines();
    for secret in [
        "web-secret",
        "svc-secret",
        "rs-secret",
        "wonderland",
        code.as_str(),
        verifier_secret.as_str(),
        state.secret().as_str(),
        device.device_code().secret().as_str(),
        at.secret().as_str(),
        presented.secret().as_str(),
    ] {
        assert!(!raw.contains(secret), "{secret} leaked");
    }
}
