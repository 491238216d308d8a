//! Who the OAuth client is and how it authenticated (RFC 6749 §2.3, RFC 7523 §2.2):
//! the client id and method only, never the secret or the assertion.

use std::borrow::Cow;

use base64::Engine;
use http::HeaderMap;
use percent_encoding::percent_decode_str;

use super::form::{ident, Form};
use crate::event::{AuditEvent, ClientAuth, HeadSecrets, Severity};
use crate::mtls::ClientCertificate;
use crate::text::{latin1_unless_utf8, lossy};

/// `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
const JWT_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Base64 as servers decode Basic credentials: padding optional (`Y2xpZW50OnNlY3JldA` is
/// read as the padded form is). A credential read more strictly here than by the server
/// would leave its password out of the secrets scrubbed from the answer.
const LENIENT: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// The client id of an `Authorization: Basic` header, as it was sent: compared whole with
/// the other names of the request by [`identify`], which makes it safe for an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BasicId {
    /// Decoded per RFC 6749 §2.3.1 (Base64, then form-urlencoded: `+` is a space).
    pub(crate) id: String,
    /// The id read with its `+` as a `+`, when it held one: many clients send ids as they
    /// are and many servers read them so (`svc+batch`), while a client that encodes as RFC
    /// 6749 asks sends a space so. Which of the two the server authenticated is its
    /// reading: only an issued token that names this one says so (see the token
    /// endpoint); an encoded space (`%20`) is a space either way.
    pub(crate) plus_kept: Option<String>,
}

/// The client id of an `Authorization: Basic` header (see [`BasicId`]), and what a response
/// could quote of every `Authorization` value, added to `secrets`
/// ([`authorization_secrets`]): the first value's Base64 is decoded once for both.
///
/// The client is named by the first value only, read as RFC 7617 writes it (visible ASCII,
/// `Basic`, a space) or with a tab for the space, as servers splitting the value at white
/// space read it (Spring Authorization Server, the Nimbus SDK): they authenticate that
/// client, and the secrets are read from any reading a server might make.
pub(crate) fn basic_client(headers: &HeaderMap, secrets: &mut HeadSecrets) -> Option<BasicId> {
    let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
    let first = values.next()?;
    let decoded = secrets_of(first.as_bytes(), secrets);
    for value in values {
        authorization_secrets(value.as_bytes(), secrets);
    }
    let (scheme, _) = first.to_str().ok()?.trim().split_once([' ', '\t'])?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    // The same credential `secrets_of` decoded: the value is ASCII, cut at the same first
    // space or tab.
    let decoded = decoded?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    let raw = lossy(&decoded[..colon]);
    let id = form_decoded(&raw).into_owned();
    let plus_kept = raw
        .contains('+')
        .then(|| percent_decode_str(&raw).decode_utf8_lossy().into_owned());
    (!id.is_empty()).then_some(BasicId { id, plus_kept })
}

/// Adds to `out` what a response could quote of one `Authorization` value: its credential,
/// whatever the scheme (the whole value when it has no scheme: a token sent bare), and, for
/// `Basic`, what it decodes to: the password (also form-decoded), or the whole decoded text
/// when it has no `:` (a key sent as Basic without an id).
pub(crate) fn authorization_secrets(value: &[u8], out: &mut HeadSecrets) {
    secrets_of(value, out);
}

/// [`authorization_secrets`], giving back a `Basic` credential's decoded bytes.
fn secrets_of(value: &[u8], out: &mut HeadSecrets) -> Option<Vec<u8>> {
    let value = lossy(value);
    let value = value.trim();
    let Some((scheme, credentials)) = value.split_once([' ', '\t']) else {
        out.add(value);
        return None;
    };
    let credentials = credentials.trim();
    out.add(credentials);
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = LENIENT.decode(credentials).ok()?;
    // Not UTF-8: also as ISO-8859-1 reads it, the charset servers decoding Basic without
    // RFC 7617's `charset` (Tomcat's, and others') read it in, and quote it back so.
    let add_latin1 = |bytes: &[u8], out: &mut HeadSecrets| {
        if let Some(text) = latin1_unless_utf8(bytes) {
            out.add(&text);
        }
    };
    match decoded.iter().position(|&b| b == b':') {
        Some(colon) => {
            let password = lossy(&decoded[colon + 1..]);
            add_latin1(&decoded[colon + 1..], out);
            out.add(&password);
            // Decoded, when that is another text (nearly never).
            if let Cow::Owned(decoded) = form_decoded(&password) {
                if decoded != *password {
                    out.add(&decoded);
                }
            }
        }
        None => {
            add_latin1(&decoded, out);
            out.add(&lossy(&decoded));
        }
    }
    Some(decoded)
}

/// `text` decoded as `application/x-www-form-urlencoded` (`+` is a space).
fn form_decoded(text: &str) -> Cow<'_, str> {
    if !text.bytes().any(|b| b == b'%' || b == b'+') {
        // Nothing to decode, as in nearly every client id and password.
        Cow::Borrowed(text)
    } else if text.contains('+') {
        Cow::Owned(
            percent_decode_str(&text.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned(),
        )
    } else {
        percent_decode_str(text).decode_utf8_lossy()
    }
}

/// The client of a request.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Client {
    pub(crate) client_id: Option<String>,
    pub(crate) method: Option<ClientAuth>,
    /// The other clients the request named, unlike `client_id`, each once, in the order
    /// [`identify`] reads them: a Basic header, a client assertion's `sub` and `iss`, a form
    /// `client_id` and a request object's client that disagree.
    pub(crate) others: Vec<OtherClient>,
}

/// A client a request named besides the one identified.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct OtherClient {
    /// Made safe for an event ([`ident`]).
    pub(crate) id: String,
    /// How the request authenticated as this client, when that is known.
    pub(crate) method: Option<ClientAuth>,
}

impl Client {
    /// The first other client the request named (`oauth.conflicting_client_id`).
    #[cfg(test)]
    pub(crate) fn other(&self) -> Option<&str> {
        self.others.first().map(|o| o.id.as_str())
    }

    /// How the request authenticated as the first other client, when that is known.
    #[cfg(test)]
    pub(crate) fn other_method(&self) -> Option<ClientAuth> {
        self.others.first().and_then(|o| o.method)
    }

    /// The ids of the other clients, for [`record_conflict`].
    pub(crate) fn other_ids(&self) -> Vec<String> {
        self.others.iter().map(|o| o.id.clone()).collect()
    }
}

/// Identifies the client from HTTP Basic (`basic`, read at request time), the form, and
/// the connection's client certificate: a `client_id` without secret or assertion over a
/// connection with a certificate is mutual TLS (RFC 8705 §2), `self_signed_tls_client_auth`
/// when the certificate's issuer is its subject, else (or when only its thumbprint is
/// known) `tls_client_auth`.
///
/// Basic names the client first, then a JWT assertion's `sub` (else `iss`, RFC 7523 §3),
/// which authenticates (RFC 7521 §4.2), then the form's `client_id`, which only claims.
/// RFC 6749 §2.3 allows one method per request, so a request whose parts name different
/// clients may be an attempt to be taken for one client while authenticating as another:
/// every other name is kept in `others`, in that order. Names are compared whole, as sent
/// (two long ids are different clients however much they share), and made safe for the
/// event after.
pub(crate) fn identify(
    basic: Option<&BasicId>,
    form: Option<&Form<'_>>,
    certificate: Option<&ClientCertificate>,
) -> Client {
    identify_claimed(basic, form, certificate, None)
}

/// [`identify`], with the `client_id` a request object claims (RFC 9101, read unverified:
/// `claimed`, as sent). A server uses the object's parameters (RFC 9101 §5), and the object
/// must name the client that authenticated (RFC 9126 §3), so an object naming another
/// client than the one identified is a request naming two, as a form `client_id` against
/// Basic is: the object only claims, and is among `others`, after the names read before it.
pub(crate) fn identify_claimed(
    basic: Option<&BasicId>,
    form: Option<&Form<'_>>,
    certificate: Option<&ClientCertificate>,
    claimed: Option<&str>,
) -> Client {
    let mut named = Named::of(basic, form, certificate);
    if let (Some(claimed), Some(_)) = (claimed, &named.client_id) {
        named.add_other(Cow::Borrowed(claimed), None);
    }
    Client {
        client_id: named.client_id.as_deref().map(ident),
        method: named.method,
        others: named
            .others
            .iter()
            .map(|(id, method)| OtherClient {
                id: ident(id),
                method: *method,
            })
            .collect(),
    }
}

/// The names of [`identify`], as sent.
#[derive(Default)]
struct Named<'a> {
    client_id: Option<Cow<'a, str>>,
    method: Option<ClientAuth>,
    /// The other names, each once, with how the request authenticated as each.
    others: Vec<(Cow<'a, str>, Option<ClientAuth>)>,
}

impl<'a> Named<'a> {
    /// Adds `name` to the others unless it is the client's or already among them.
    fn add_other(&mut self, name: Cow<'a, str>, method: Option<ClientAuth>) {
        if self.client_id.as_deref() != Some(&*name) && !self.others.iter().any(|(o, _)| *o == name)
        {
            self.others.push((name, method));
        }
    }

    fn of(
        basic: Option<&'a BasicId>,
        form: Option<&'a Form<'_>>,
        certificate: Option<&ClientCertificate>,
    ) -> Self {
        if let Some(basic) = basic {
            // Basic's id as RFC 6749 §2.3.1 reads it (`+` a space). One sent with a `+` as it
            // is (`svc+batch`) against a form's `svc%2Bbatch` is ambiguous: a client that
            // does not encode, or a client `svc batch` that does and claims another; the
            // conflict stays on the record unless an issued token settles it.
            let by_form = Named::of(None, form, certificate);
            let mut named = Named {
                client_id: Some(Cow::Borrowed(basic.id.as_str())),
                method: Some(ClientAuth::ClientSecretBasic),
                others: Vec::new(),
            };
            // Every name the form gives, the one it would authenticate first.
            if let Some(form_client) = by_form.client_id {
                named.add_other(form_client, by_form.method);
            }
            for (other, method) in by_form.others {
                named.add_other(other, method);
            }
            return named;
        }
        let Some(form) = form else {
            return Named::default();
        };
        let form_client = form.get("client_id");
        if form.get("client_assertion_type") == Some(JWT_ASSERTION) {
            if let Some(assertion) = form.get("client_assertion") {
                let peek = JwtPeek::of(assertion);
                let symmetric = peek
                    .as_ref()
                    .and_then(|p| p.alg.as_deref())
                    .is_some_and(|alg| alg.starts_with("HS"));
                let method = Some(if symmetric {
                    ClientAuth::ClientSecretJwt
                } else {
                    ClientAuth::PrivateKeyJwt
                });
                // RFC 7523 §3: `iss` and `sub` are the client id.
                let (subject, issuer) = peek.map_or((None, None), |p| (p.subject, p.issuer));
                // RFC 7523 §3: both must be the client; a server may find the client by either.
                let iss_other = match (&subject, &issuer) {
                    (Some(sub), Some(iss)) if sub != iss => Some(Cow::Owned(iss.clone())),
                    _ => None,
                };
                let asserted = subject.or(issuer).map(Cow::Owned);
                let mut named = Named {
                    client_id: None,
                    method,
                    others: Vec::new(),
                };
                // RFC 7521 §4.2: the assertion identifies the client; a form `client_id` is
                // only a claim, and must name the same client.
                match (form_client, asserted) {
                    (Some(form_client), Some(asserted)) if form_client != asserted => {
                        named.client_id = Some(asserted);
                        // A server that believed the form's client authenticated it by the
                        // assertion, or by a secret beside it.
                        let form_method = form
                            .get("client_secret")
                            .map_or(method, |_| Some(ClientAuth::ClientSecretPost));
                        named.add_other(Cow::Borrowed(form_client), form_method);
                    }
                    (form_client, asserted) => {
                        named.client_id = asserted.or(form_client.map(Cow::Borrowed));
                    }
                }
                // The assertion's issuer authenticates the same way as its subject.
                if let Some(iss) = iss_other {
                    named.add_other(iss, method);
                }
                return named;
            }
        }
        let method = match (&form_client, form.get("client_secret")) {
            (Some(_), Some(_)) => Some(ClientAuth::ClientSecretPost),
            // A client assertion not read above (another type, a SAML one of RFC 7522, none,
            // or sent twice): the client authenticated, by a method not named here or not
            // known; `none` would call it a public client, mutual TLS the certificate's.
            (Some(_), None) if form.first("client_assertion").is_some() => None,
            (Some(_), None) => Some(match certificate.map(ClientCertificate::self_issued) {
                Some(Some(true)) => ClientAuth::SelfSignedTlsClientAuth,
                Some(_) => ClientAuth::TlsClientAuth,
                None => ClientAuth::None,
            }),
            (None, _) => None,
        };
        Named {
            client_id: form_client.map(Cow::Borrowed),
            method,
            ..Named::default()
        }
    }
}

/// Most clients recorded in `oauth.conflicting_client_ids`: a request names a few at most
/// (Basic, an assertion's `sub` and `iss`, a form's, a query's, a request object's, a pushed
/// request's), but how many is the sender's choice, so the record is bounded.
pub(crate) const MAX_CONFLICTING_CLIENTS: usize = 8;

/// Records in `event` the other clients a request named, besides `actor.client_id`: the
/// first in `oauth.conflicting_client_id`, every one (each once, in order, at most
/// [`MAX_CONFLICTING_CLIENTS`]) in `oauth.conflicting_client_ids`; and raises the event's
/// severity to at least `warning`.
pub(crate) fn record_conflict(event: &mut AuditEvent, others: Vec<String>) {
    if others.is_empty() {
        return;
    }
    let mut distinct: Vec<String> = Vec::with_capacity(others.len().min(MAX_CONFLICTING_CLIENTS));
    for other in others {
        if distinct.len() == MAX_CONFLICTING_CLIENTS {
            break;
        }
        if !distinct.contains(&other) {
            distinct.push(other);
        }
    }
    let oauth = event.oauth.get_or_insert_with(Box::default);
    oauth.conflicting_client_id = distinct.first().cloned();
    oauth.conflicting_client_ids = distinct;
    if event.severity == Severity::Info {
        event.severity = Severity::Warning;
    }
}

/// The few unverified facts read from a JWT assertion: header `alg`, `iss` and `sub`, as
/// they were sent (made safe with [`ident`] before an event holds them).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct JwtPeek {
    pub(crate) alg: Option<String>,
    pub(crate) issuer: Option<String>,
    pub(crate) subject: Option<String>,
}

impl JwtPeek {
    pub(crate) fn of(jwt: &str) -> Option<Self> {
        let mut parts = jwt.split('.');
        let (header, payload) = (parts.next()?, parts.next()?);
        let decode = |part: &str| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(part.trim_end_matches('='))
                .ok()
                .and_then(|bytes| crate::json::object_from_slice(&bytes))
        };
        let header = decode(header)?;
        let payload = decode(payload)?;
        let text = |map: &serde_json::Map<String, serde_json::Value>, key: &str| {
            map.get(key).and_then(|v| v.as_str()).map(str::to_owned)
        };
        Some(JwtPeek {
            alg: text(&header, "alg"),
            issuer: text(&payload, "iss"),
            subject: text(&payload, "sub"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::SecretDigest;

    fn jwt(alg: &str, claims: &str) -> String {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!(
            "{}.{}.sig",
            b64(&format!(r#"{{"alg":"{alg}"}}"#)),
            b64(claims)
        )
    }

    /// A Basic client id with nothing to decode.
    fn id(id: &str) -> BasicId {
        BasicId {
            id: id.to_owned(),
            plus_kept: None,
        }
    }

    fn basic(user_pass: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        let v = base64::engine::general_purpose::STANDARD.encode(user_pass);
        h.insert(
            http::header::AUTHORIZATION,
            format!("Basic {v}").parse().unwrap(),
        );
        h
    }

    #[test]
    fn basic_is_percent_decoded_and_drops_the_secret() {
        // The client id, and the secrets of the header past its Base64 credential.
        let client = |user_pass: &str| {
            let headers = basic(user_pass);
            let mut head = HeadSecrets::default();
            let id = basic_client(&headers, &mut head).map(|b| b.id);
            let credential = base64::engine::general_purpose::STANDARD.encode(user_pass);
            assert_eq!(head.digests()[0], SecretDigest::of(&credential));
            (id, head.digests()[1..].to_vec())
        };
        let (id, digests) = client("my%20client+x%3A1:s3cr%2Bt+1");
        assert_eq!(id.as_deref(), Some("my client x:1"));
        let plus =
            basic_client(&basic("my%20client+x%3A1:pw"), &mut HeadSecrets::default()).unwrap();
        assert_eq!(plus.plus_kept.as_deref(), Some("my client+x:1"));
        let plain = basic_client(&basic("my%20client:pw"), &mut HeadSecrets::default()).unwrap();
        assert_eq!(plain.plus_kept, None);
        // The password, as sent and as decoded; nothing else of it is kept.
        assert_eq!(
            digests,
            [SecretDigest::of("s3cr%2Bt+1"), SecretDigest::of("s3cr+t 1")]
        );
        // No colon: no client, and the whole decoded text is the secret (a key sent as
        // Basic without an id).
        assert_eq!(client("nocolon"), (None, vec![SecretDigest::of("nocolon")]));
        // No client id, but the password is still a secret to scrub.
        assert_eq!(client(":secret"), (None, vec![SecretDigest::of("secret")]));
        // Kept once when decoding leaves it as it was.
        assert_eq!(client("id:%zz!").1, [SecretDigest::of("%zz!")]);
        assert_eq!(client("id:pw").1, [SecretDigest::of("pw")]);
        assert_eq!(client("id:"), (Some("id".to_owned()), Vec::new()));
        let mut bearer = HeaderMap::new();
        bearer.insert(http::header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        let mut head = HeadSecrets::default();
        assert_eq!(basic_client(&bearer, &mut head), None);
        assert_eq!(head.digests(), [SecretDigest::of("abc")]);
    }

    #[test]
    fn identifies_each_method() {
        let c = identify(Some(&id("web")), Some(&Form::parse(b"client_id=web")), None);
        assert_eq!(c.client_id.as_deref(), Some("web"));
        assert_eq!(c.method, Some(ClientAuth::ClientSecretBasic));
        assert_eq!((c.other(), c.other_method()), (None, None));

        let c = identify(
            None,
            Some(&Form::parse(b"client_id=svc&client_secret=x")),
            None,
        );
        assert_eq!(c.method, Some(ClientAuth::ClientSecretPost));
        let c = identify(None, Some(&Form::parse(b"client_id=spa")), None);
        assert_eq!(c.method, Some(ClientAuth::None));
        let known_by_thumbprint = ClientCertificate::from_thumbprint(&"A".repeat(43)).unwrap();
        let form = Form::parse(b"client_id=svc");
        let c = identify(None, Some(&form), Some(&known_by_thumbprint));
        assert_eq!(c.method, Some(ClientAuth::TlsClientAuth));
        // A secret or Basic wins: the certificate then only binds tokens.
        let c = identify(
            None,
            Some(&Form::parse(b"client_id=svc&client_secret=x")),
            Some(&known_by_thumbprint),
        );
        assert_eq!(c.method, Some(ClientAuth::ClientSecretPost));
        assert_eq!(
            identify(None, Some(&Form::parse(b"x=1")), None),
            Client::default()
        );

        let body = |alg: &str| {
            format!(
                "client_assertion_type={}&client_assertion={}",
                JWT_ASSERTION.replace(':', "%3A"),
                jwt(alg, r#"{"iss":"svc-a","sub":"svc-a","aud":"x"}"#)
            )
        };
        let b = body("RS256");
        let c = identify(None, Some(&Form::parse(b.as_bytes())), None);
        assert_eq!(c.client_id.as_deref(), Some("svc-a"));
        assert_eq!(c.method, Some(ClientAuth::PrivateKeyJwt));
        let b = body("HS256");
        let c = identify(None, Some(&Form::parse(b.as_bytes())), None);
        assert_eq!(c.method, Some(ClientAuth::ClientSecretJwt));
    }

    #[test]
    fn an_assertion_of_another_kind_is_never_no_authentication() {
        // A SAML client assertion (RFC 7522 §2.2), a JWT one sent without its type or
        // sent twice: the client authenticated, by a method the schema does not name or
        // that cannot be told; `none` would call it a public client.
        for body in [
            "client_id=app&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Asaml2-bearer&client_assertion=PHNhbWw%2B",
            "client_id=app&client_assertion=eyJhbGciOiJSUzI1NiJ9.e30.c2ln",
            "client_id=app&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=a.b.c&client_assertion=d.e.f",
        ] {
            let certificate =
                ClientCertificate::from_thumbprint(&"A".repeat(43)).expect("a thumbprint");
            for certificate in [None, Some(&certificate)] {
                let c = identify(None, Some(&Form::parse(body.as_bytes())), certificate);
                assert_eq!(c.client_id.as_deref(), Some("app"), "{body}");
                assert_eq!(c.method, None, "{body}");
            }
        }
    }

    #[test]
    fn a_request_naming_two_clients_keeps_the_other() {
        let c = identify(
            Some(&id("web")),
            Some(&Form::parse(b"client_id=other&client_secret=x")),
            None,
        );
        assert_eq!(c.client_id.as_deref(), Some("web"));
        assert_eq!(c.method, Some(ClientAuth::ClientSecretBasic));
        assert_eq!(c.other(), Some("other"));
        assert_eq!(c.other_method(), Some(ClientAuth::ClientSecretPost));

        let assertion = |sub: &str| {
            format!(
                "client_assertion_type={}&client_assertion={}",
                JWT_ASSERTION.replace(':', "%3A"),
                jwt("RS256", &format!(r#"{{"iss":"{sub}","sub":"{sub}"}}"#))
            )
        };
        // The form's client_id and the assertion's subject disagree: the assertion is what
        // authenticates (RFC 7521 §4.2), the form's id only a claim.
        let body = format!("client_id=svc-a&{}", assertion("svc-b"));
        let c = identify(None, Some(&Form::parse(body.as_bytes())), None);
        assert_eq!(c.client_id.as_deref(), Some("svc-b"));
        assert_eq!(c.method, Some(ClientAuth::PrivateKeyJwt));
        assert_eq!(c.other(), Some("svc-a"));
        // A server that believed the form authenticated its client by the assertion...
        assert_eq!(c.other_method(), Some(ClientAuth::PrivateKeyJwt));
        // ... or by a secret sent beside it.
        let body = format!("client_id=svc-a&client_secret=s&{}", assertion("svc-b"));
        let c = identify(None, Some(&Form::parse(body.as_bytes())), None);
        assert_eq!(c.other(), Some("svc-a"));
        assert_eq!(c.other_method(), Some(ClientAuth::ClientSecretPost));
        // Basic, then an assertion for another client whose form client_id is Basic's.
        let body = format!("client_id=web&{}", assertion("svc-b"));
        let c = identify(Some(&id("web")), Some(&Form::parse(body.as_bytes())), None);
        assert_eq!(c.client_id.as_deref(), Some("web"));
        assert_eq!(c.other(), Some("svc-b"));
        assert_eq!(c.other_method(), Some(ClientAuth::PrivateKeyJwt));
        // Agreeing names are one client.
        let body = format!("client_id=svc-b&{}", assertion("svc-b"));
        let c = identify(None, Some(&Form::parse(body.as_bytes())), None);
        assert_eq!((c.client_id.as_deref(), c.other()), (Some("svc-b"), None));
    }

    #[test]
    fn every_other_name_is_kept_once_in_order() {
        let assertion = |iss: &str, sub: &str| {
            format!(
                "client_assertion_type={}&client_assertion={}",
                JWT_ASSERTION.replace(':', "%3A"),
                jwt("RS256", &format!(r#"{{"iss":"{iss}","sub":"{sub}"}}"#))
            )
        };
        let ids = |c: &Client| c.others.iter().map(|o| o.id.clone()).collect::<Vec<_>>();
        // Basic, a form `client_id`, an assertion whose `sub` and `iss` differ: four clients.
        let body = format!(
            "client_id=form-app&{}",
            assertion("issuer-app", "asserted-app")
        );
        let c = identify(Some(&id("web")), Some(&Form::parse(body.as_bytes())), None);
        assert_eq!(c.client_id.as_deref(), Some("web"));
        assert_eq!(ids(&c), ["asserted-app", "form-app", "issuer-app"]);
        assert_eq!(c.others[0].method, Some(ClientAuth::PrivateKeyJwt));
        // Without Basic: the assertion's subject, then the form's and the issuer.
        let c = identify(None, Some(&Form::parse(body.as_bytes())), None);
        assert_eq!(c.client_id.as_deref(), Some("asserted-app"));
        assert_eq!(ids(&c), ["form-app", "issuer-app"]);
        // A request object's claim comes after them, and a name already kept is kept once.
        let c = identify_claimed(
            None,
            Some(&Form::parse(body.as_bytes())),
            None,
            Some("object-app"),
        );
        assert_eq!(ids(&c), ["form-app", "issuer-app", "object-app"]);
        let c = identify_claimed(
            None,
            Some(&Form::parse(body.as_bytes())),
            None,
            Some("form-app"),
        );
        assert_eq!(ids(&c), ["form-app", "issuer-app"]);
    }

    #[test]
    fn recorded_conflicts_are_distinct_and_bounded() {
        let mut event = AuditEvent::new(
            std::sync::Arc::default(),
            crate::event::Timestamp::from_unix(0).unwrap(),
            crate::event::EventKind::AccessTokenIssued,
            crate::event::Outcome::Success,
        );
        let many: Vec<String> = (0..100).map(|i| format!("c{}", i % 50)).collect();
        record_conflict(&mut event, many);
        let oauth = event.oauth.as_deref().unwrap();
        assert_eq!(oauth.conflicting_client_id.as_deref(), Some("c0"));
        assert_eq!(oauth.conflicting_client_ids.len(), MAX_CONFLICTING_CLIENTS);
        assert_eq!(oauth.conflicting_client_ids[..3], ["c0", "c1", "c2"]);
        assert_eq!(event.severity, Severity::Warning);
        let mut event = AuditEvent::new(
            std::sync::Arc::default(),
            crate::event::Timestamp::from_unix(0).unwrap(),
            crate::event::EventKind::AccessTokenIssued,
            crate::event::Outcome::Success,
        );
        record_conflict(&mut event, vec!["a".into(), "a".into(), "b".into()]);
        assert_eq!(
            event.oauth.as_deref().unwrap().conflicting_client_ids,
            ["a", "b"]
        );
        let mut event = AuditEvent::new(
            std::sync::Arc::default(),
            crate::event::Timestamp::from_unix(0).unwrap(),
            crate::event::EventKind::AccessTokenIssued,
            crate::event::Outcome::Success,
        );
        record_conflict(&mut event, Vec::new());
        assert!(event.oauth.is_none());
        assert_eq!(event.severity, Severity::Info);
    }

    #[test]
    fn a_request_objects_client_is_a_claim_like_the_forms() {
        // Basic authenticates `web`; an object (a PAR `request`) claiming `other` names two,
        // whether or not the form names `web` too.
        for body in [&b""[..], b"client_id=web"] {
            let c = identify_claimed(
                Some(&id("web")),
                Some(&Form::parse(body)),
                None,
                Some("other"),
            );
            assert_eq!(c.client_id.as_deref(), Some("web"));
            assert_eq!(c.method, Some(ClientAuth::ClientSecretBasic));
            assert_eq!((c.other(), c.other_method()), (Some("other"), None));
        }
        // The same client: one name.
        let c = identify_claimed(Some(&id("web")), None, None, Some("web"));
        assert_eq!(c.other(), None);
        // A form's `client_id` against Basic came first: it is the one kept.
        let form = Form::parse(b"client_id=form-app");
        let c = identify_claimed(Some(&id("web")), Some(&form), None, Some("other"));
        assert_eq!(c.other(), Some("form-app"));
        // Without Basic, the form's authenticated client against the object's.
        let form = Form::parse(b"client_id=web&client_secret=s");
        let c = identify_claimed(None, Some(&form), None, Some("other"));
        assert_eq!(c.client_id.as_deref(), Some("web"));
        assert_eq!(c.other(), Some("other"));
        // Compared as sent, like a form's: Basic's `svc+batch` is `svc batch` (RFC 6749
        // §2.3.1), which an object's `svc+batch` is not.
        let plus = BasicId {
            id: "svc batch".to_owned(),
            plus_kept: Some("svc+batch".to_owned()),
        };
        let c = identify_claimed(Some(&plus), None, None, Some("svc+batch"));
        assert_eq!(c.other(), Some("svc+batch"));
        // No client identified: the object's is the only name (the caller's actor).
        let c = identify_claimed(None, Some(&Form::parse(b"x=1")), None, Some("other"));
        assert_eq!((c.client_id.as_deref(), c.other()), (None, None));
    }

    #[test]
    fn names_are_compared_whole_and_as_sent() {
        // Two long ids sharing the bytes an event keeps of them are two clients.
        let (a, b) = ("c".repeat(300) + "-victim", "c".repeat(300) + "-attacker");
        let body = format!("client_id={b}&client_secret=x");
        let c = identify(Some(&id(&a)), Some(&Form::parse(body.as_bytes())), None);
        assert!(c.other().is_some(), "{c:?}");
        assert!(c.client_id.as_ref().is_some_and(|id| id.len() <= 256));
        // Two ids that read alike once made safe for a log are two clients.
        let c = identify(
            Some(&id(r"app\u{a}x")),
            Some(&Form::parse(b"client_id=app%0Ax&client_secret=x")),
            None,
        );
        assert_eq!(c.client_id.as_deref(), Some(r"app\u{a}x"));
        assert_eq!(c.other(), Some(r"app\u{a}x"), "two clients, one spelling");
        // The same for an assertion's names.
        let body = format!(
            "client_id={a}&client_assertion_type={}&client_assertion={}",
            JWT_ASSERTION.replace(':', "%3A"),
            jwt("RS256", &format!(r#"{{"iss":"{b}","sub":"{b}"}}"#))
        );
        let c = identify(None, Some(&Form::parse(body.as_bytes())), None);
        assert!(c.other().is_some(), "{c:?}");
    }

    #[test]
    fn a_plus_in_basic_is_both_readings_until_a_token_says() {
        // `svc+batch` sent in Basic: a client `svc+batch` that does not encode, or a client
        // `svc batch` that does (RFC 6749 §2.3.1). Against a form's `svc%2Bbatch` the request
        // alone cannot tell: the RFC's reading is the client, the form's the conflict (an
        // issued token naming `svc+batch` settles it at the token endpoint).
        let sent = basic_client(&basic("svc+batch:pw"), &mut HeadSecrets::default()).unwrap();
        assert_eq!(sent.id, "svc batch");
        assert_eq!(sent.plus_kept.as_deref(), Some("svc+batch"));
        let c = identify(
            Some(&sent),
            Some(&Form::parse(
                b"grant_type=client_credentials&client_id=svc%2Bbatch",
            )),
            None,
        );
        assert_eq!(c.client_id.as_deref(), Some("svc batch"));
        assert_eq!(c.method, Some(ClientAuth::ClientSecretBasic));
        assert_eq!(c.other(), Some("svc+batch"));
        // Basic alone keeps its reading.
        assert_eq!(
            identify(Some(&sent), None, None).client_id.as_deref(),
            Some("svc batch")
        );
        // A form that reads as Basic does is the same client.
        let c = identify(
            Some(&sent),
            Some(&Form::parse(b"client_id=svc+batch")),
            None,
        );
        assert_eq!(
            (c.client_id.as_deref(), c.other()),
            (Some("svc batch"), None)
        );
    }

    /// A client that form-encodes its Basic id (RFC 6749 §2.3.1: `svc%20batch`, a
    /// space meant as a space) is the client `svc batch`, whatever the form claims: a form
    /// `client_id` of `svc+batch` (another client) is a conflict, not the same client.
    #[test]
    fn an_encoded_space_in_basic_is_not_the_forms_plus() {
        let sent = basic_client(
            &basic("svc%20batch:attacker-secret"),
            &mut HeadSecrets::default(),
        )
        .unwrap();
        let c = identify(
            Some(&sent),
            Some(&Form::parse(
                b"grant_type=client_credentials&client_id=svc%2Bbatch",
            )),
            None,
        );
        assert_eq!(
            (c.client_id.as_deref(), c.other()),
            (Some("svc batch"), Some("svc+batch")),
            "the attacker's client is logged as the victim's"
        );
    }

    /// Review, 5 December 2026: `svc+batch` is exactly how an RFC 6749 §2.3.1 client named
    /// `svc batch` sends its id in Basic (form-encoded: a space is `+`). Such a client, with
    /// its own secret, adding `client_id=svc%2Bbatch` (another client) to the form is logged
    /// as that other client with no conflict, at endpoints with no issued JWT to correct it
    /// (introspection, revocation, PAR, an opaque token). The server's reading is unknown:
    /// the other reading must stay on the record.
    #[test]
    fn a_form_encoded_space_in_basic_keeps_the_other_reading() {
        let sent = basic_client(
            &basic("svc+batch:svc-batch-secret"),
            &mut HeadSecrets::default(),
        )
        .unwrap();
        let c = identify(
            Some(&sent),
            Some(&Form::parse(b"token=abc&client_id=svc%2Bbatch")),
            None,
        );
        assert!(
            c.other() == Some("svc batch") || c.client_id.as_deref() == Some("svc batch"),
            "the client `svc batch` is logged as `svc+batch` alone: {c:?}"
        );
    }

    #[test]
    fn peeks_into_jwts() {
        let p = JwtPeek::of(&jwt("ES256", r#"{"iss":"i","sub":"s"}"#)).unwrap();
        assert_eq!(p.alg.as_deref(), Some("ES256"));
        assert_eq!(p.issuer.as_deref(), Some("i"));
        assert_eq!(p.subject.as_deref(), Some("s"));
        assert_eq!(JwtPeek::of("opaque"), None);
        assert_eq!(JwtPeek::of("a.b.c"), None);
    }
}
