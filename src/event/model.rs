use std::net::IpAddr;
use std::sync::Arc;

use compact_str::CompactString;
use serde::Serialize;
use uuid::Uuid;

use super::{ActorKind, ClientAuth, EventHash, EventKind, Outcome, Severity, Shared, Timestamp};
use crate::dpop::ProofOutcome;
use crate::token::{Delegate, TokenFingerprint, TokenFormat, Verdict};

/// The value of the `schema` field of every event.
pub const SCHEMA: &str = "oauth-audit/1";

/// One audit event, schema v1 (`docs/events.md`).
///
/// Absent values are omitted from the JSON, never `null`. Every sink receives the same event.
///
/// The fields of this struct and of every object in it are declared in key order, so that
/// the JSON serde writes has its keys as RFC 8785 orders them and the chain hashes an event
/// without sorting it (a test checks the declarations).
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct AuditEvent {
    /// Who acted.
    #[serde(skip_serializing_if = "no_actor")]
    pub actor: Shared<Actor>,
    /// For `SecurityAlert`. Boxed, like [`AuditEvent::oauth`]: most events have none, and
    /// every event is moved several times on its way to the sinks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert: Option<Box<Alert>>,
    /// The event's place in its stream's hash chain, when chaining is on
    /// ([`crate::chain`]). Boxed, like the other parts most events lack, so that an event
    /// is small to move and to allocate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain: Option<Box<ChainLink>>,
    /// For `AuditCheckpoint`: the signed checkpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<Box<Checkpoint>>,
    /// How the OAuth client authenticated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_auth: Option<ClientAuth>,
    /// For `AuditEventsDropped`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dropped: Option<Box<Dropped>>,
    /// The OAuth error code or token verdict, and the sanitised description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorInfo>,
    /// The grant type, as sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant_type: Option<String>,
    /// The HTTP exchange; absent for meta events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpInfo>,
    /// UUIDv7, unique per event; consumers deduplicate on it.
    pub id: Uuid,
    /// What happened.
    pub kind: EventKind,
    /// String pairs added by the application's own enrichment (a
    /// [`Processor`](crate::process::Processor)), e.g. `tenant`; omitted when empty.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
    /// OAuth request details beyond the core fields (response type, PKCE, resources...).
    /// Boxed: it is larger than all the rest of a protected route's event, which has none.
    #[serde(skip_serializing_if = "absent_or_empty")]
    pub oauth: Option<Box<OAuthDetails>>,
    /// Whether it succeeded.
    pub outcome: Outcome,
    /// For authorization events: the redirect URI without its query string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    /// A refresh token issued alongside, as a fingerprint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<Box<TokenRef>>,
    /// From `x-request-id` when present, else generated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Always [`SCHEMA`].
    pub schema: &'static str,
    /// Requested, granted, required and used scopes.
    #[serde(skip_serializing_if = "Scopes::is_empty")]
    pub scopes: Scopes,
    /// The producer.
    pub service: Arc<ServiceInfo>,
    /// How much attention it deserves.
    pub severity: Severity,
    /// Where the request came from; absent for meta events.
    #[serde(skip_serializing_if = "absent_or_empty")]
    pub source: Option<Source>,
    /// The span the request was handled in, from the current span's OpenTelemetry context
    /// (feature `opentelemetry`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub span_id: Option<String>,
    /// When the request arrived (or, for meta events, when they were raised).
    pub time: Timestamp,
    /// The token the event is about, never in the clear.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<Shared<TokenDetails>>,
    /// The trace of the current span's OpenTelemetry context (feature `opentelemetry`),
    /// else of a W3C `traceparent` header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// The event's JSON, when chaining made it (RFC 8785, the very bytes it hashed), so
    /// that sinks write it instead of serialising the event again. Set only by the chain,
    /// after the last processor; cleared when an event is emitted; never cloned, so a copy
    /// that is changed cannot carry stale JSON.
    #[serde(skip)]
    pub(crate) json: EncodedJson,
}

/// See [`AuditEvent::json`]: a cache that a clone starts without.
#[derive(Default)]
pub(crate) struct EncodedJson(Option<bytes::Bytes>);

impl EncodedJson {
    pub(crate) fn set(&mut self, json: bytes::Bytes) {
        self.0 = Some(json);
    }

    pub(crate) fn clear(&mut self) {
        self.0 = None;
    }

    pub(crate) fn get(&self) -> Option<&bytes::Bytes> {
        self.0.as_ref()
    }
}

impl Clone for EncodedJson {
    fn clone(&self) -> Self {
        EncodedJson(None)
    }
}

impl std::fmt::Debug for EncodedJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "EncodedJson(..)"
        } else {
            "EncodedJson(None)"
        })
    }
}

impl AuditEvent {
    /// A new event with a fresh id, the given kind and outcome, and the severity that
    /// follows from them (`warning` for failures, `critical` for alerts, else `info`).
    ///
    /// The id is a UUIDv7 of `time`: its milliseconds, and 74 random bits. Ids are unique;
    /// ids of the same millisecond are in no particular order.
    pub fn new(
        service: Arc<ServiceInfo>,
        time: Timestamp,
        kind: EventKind,
        outcome: Outcome,
    ) -> Self {
        AuditEvent {
            schema: SCHEMA,
            id: time.uuid_v7(),
            time,
            kind,
            outcome,
            severity: default_severity(kind, outcome),
            service,
            request_id: None,
            trace_id: None,
            span_id: None,
            actor: Shared::default(),
            client_auth: None,
            grant_type: None,
            scopes: Scopes::default(),
            token: None,
            refresh_token: None,
            redirect_uri: None,
            oauth: None,
            http: None,
            source: None,
            error: None,
            alert: None,
            dropped: None,
            checkpoint: None,
            chain: None,
            labels: std::collections::BTreeMap::new(),
            json: EncodedJson::default(),
        }
    }

    /// Makes this event what [`AuditEvent::new`] makes, with `new_request_id`, field by
    /// field: what the old event set is dropped and written over, where assigning a new
    /// event would build all of its 1 KB and copy it in. The old request id's buffer takes
    /// the new id. For the events the sinks hand back (`event::recycle`).
    ///
    /// Every field is named (no `..`), so a field added to the event does not compile here
    /// until it is reset too; `recycle::tests::a_recycled_event_keeps_nothing_of_the_one_before`
    /// holds the result to a new event's, byte for byte, from an event with every field set.
    pub(crate) fn renew(
        &mut self,
        new_service: Arc<ServiceInfo>,
        new_time: Timestamp,
        (new_kind, new_outcome): (EventKind, Outcome),
        new_request_id: &str,
    ) {
        let AuditEvent {
            actor,
            alert,
            chain,
            checkpoint,
            client_auth,
            dropped,
            error,
            grant_type,
            http,
            id,
            kind,
            labels,
            oauth,
            outcome,
            redirect_uri,
            refresh_token,
            request_id,
            schema,
            scopes,
            service,
            severity,
            source,
            span_id,
            time,
            token,
            trace_id,
            json,
        } = self;
        *schema = SCHEMA;
        *id = new_time.uuid_v7();
        *time = new_time;
        *kind = new_kind;
        *outcome = new_outcome;
        *severity = default_severity(new_kind, new_outcome);
        *service = new_service;
        match request_id {
            Some(id) => {
                id.clear();
                id.push_str(new_request_id);
            }
            None => *request_id = Some(new_request_id.to_owned()),
        }
        *trace_id = None;
        *span_id = None;
        *actor = Default::default();
        *client_auth = None;
        *grant_type = None;
        *scopes = Default::default();
        *token = None;
        *refresh_token = None;
        *redirect_uri = None;
        *oauth = None;
        *http = None;
        *source = None;
        *error = None;
        *alert = None;
        *dropped = None;
        *checkpoint = None;
        *chain = None;
        // Most events have no labels, and emptying an empty map still walks it.
        if !labels.is_empty() {
            labels.clear();
        }
        json.clear();
    }

    /// An `AuditEventsDropped` event: `count` events were lost or delayed in `sink`.
    pub fn dropped(service: Arc<ServiceInfo>, count: u64, reason: DropReason, sink: &str) -> Self {
        let mut event = AuditEvent::new(
            service,
            Timestamp::now(),
            EventKind::AuditEventsDropped,
            Outcome::Failure,
        );
        event.dropped = Some(Box::new(Dropped {
            count,
            reason,
            sink: sink.to_owned(),
            ranges: Vec::new(),
            signature: None,
        }));
        event
    }

    /// Sets `kind` and `outcome` together and recomputes the default severity.
    pub fn set_kind(&mut self, kind: EventKind, outcome: Outcome) {
        self.kind = kind;
        self.outcome = outcome;
        self.severity = default_severity(kind, outcome);
    }
}

/// An object whose fields are all optional, so that it can be empty.
trait MaybeEmpty {
    fn is_empty(&self) -> bool;
}

/// `actor` is left out when nothing is known about it.
fn no_actor(actor: &Shared<Actor>) -> bool {
    actor.is_empty()
}

/// Optional objects are left out when absent *or* empty: `"source":{}` says nothing.
fn absent_or_empty<T: MaybeEmpty>(value: &Option<T>) -> bool {
    value.as_ref().is_none_or(MaybeEmpty::is_empty)
}

impl MaybeEmpty for OAuthDetails {
    fn is_empty(&self) -> bool {
        OAuthDetails::is_empty(self)
    }
}

impl<T: MaybeEmpty> MaybeEmpty for Box<T> {
    fn is_empty(&self) -> bool {
        T::is_empty(self)
    }
}

impl MaybeEmpty for Source {
    fn is_empty(&self) -> bool {
        Source::is_empty(self)
    }
}

impl MaybeEmpty for UnverifiedClaims {
    fn is_empty(&self) -> bool {
        UnverifiedClaims::is_empty(self)
    }
}

fn default_severity(kind: EventKind, outcome: Outcome) -> Severity {
    match (kind, outcome) {
        (EventKind::SecurityAlert, _) => Severity::Critical,
        (_, Outcome::Failure) | (EventKind::AccessDenied, _) => Severity::Warning,
        _ => Severity::Info,
    }
}

/// The `service` object: who produced the event.
///
/// Built with [`ServiceInfo::new`], its `instance` set afterwards when known. The struct is
/// `#[non_exhaustive]`, so that a field added to the schema breaks no one who builds it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ServiceInfo {
    /// This instance (host name, pod name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// The service's name.
    pub name: String,
}

impl ServiceInfo {
    /// The service `name`, its instance unknown.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use oauth_audit::event::{AuditEvent, EventKind, Outcome, ServiceInfo, Timestamp};
    ///
    /// let mut service = ServiceInfo::new("orders-api");
    /// service.instance = Some("orders-api-7f9c".into());
    /// let event = AuditEvent::new(Arc::new(service), Timestamp::now(), EventKind::ResourceAccessed, Outcome::Success);
    /// let json = serde_json::to_value(&event).unwrap();
    /// assert_eq!(json["service"], serde_json::json!({"instance": "orders-api-7f9c", "name": "orders-api"}));
    /// ```
    pub fn new(name: impl Into<String>) -> ServiceInfo {
        ServiceInfo {
            instance: None,
            name: name.into(),
        }
    }
}

/// The `actor` object.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Actor {
    /// The OAuth client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The token's delegation chain (RFC 8693 `act` claims): who acts for `subject`, the
    /// current actor first, at most [`MAX_DELEGATION_DEPTH`](crate::token::MAX_DELEGATION_DEPTH).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub delegation: Vec<Delegate>,
    /// `user`, `client` or `anonymous`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<ActorKind>,
    /// The end user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

impl Actor {
    /// True when nothing is known about the actor.
    pub fn is_empty(&self) -> bool {
        self.subject.is_none()
            && self.client_id.is_none()
            && self.kind.is_none()
            && self.delegation.is_empty()
    }

    /// Fills `kind` from what is known: a subject makes a user, a client alone a client.
    pub fn infer_kind(&mut self) {
        self.kind = Some(match (&self.subject, &self.client_id) {
            (Some(_), _) => ActorKind::User,
            (None, Some(_)) => ActorKind::Client,
            (None, None) => ActorKind::Anonymous,
        });
    }
}

/// The `scopes` object. `None` means unknown; an empty list means known to be empty.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Scopes {
    /// Scopes the issued or presented token carries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub granted: Option<Shared<Vec<String>>>,
    /// Required scopes the token lacked (only when some were missing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing: Option<Vec<String>>,
    /// Scopes the request asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested: Option<Vec<String>>,
    /// Scopes the route declared: shared by the route's events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required: Option<Shared<Vec<String>>>,
    /// The granted scopes that satisfied `required`: shared with `required` when they are
    /// all of it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used: Option<Shared<Vec<String>>>,
}

impl Scopes {
    /// True when no list is present.
    pub fn is_empty(&self) -> bool {
        self.requested.is_none()
            && self.granted.is_none()
            && self.required.is_none()
            && self.used.is_none()
            && self.missing.is_none()
    }
}

/// The `token` object: what is known about a token, never the token itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct TokenDetails {
    /// What introspection answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    /// The audiences.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub audience: Vec<String>,
    /// How the token is bound to its sender (DPoP key, client certificate) and whether the
    /// request proved possession. Boxed: most tokens are plain bearer tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binding: Option<Box<TokenBinding>>,
    /// The client the token was issued to, when the event is about someone else's token
    /// (introspection).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// When it expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<super::Timestamp>,
    /// `sha256:` and 32 hex characters.
    pub fingerprint: TokenFingerprint,
    /// `jwt` or `opaque`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<TokenFormat>,
    /// When it was issued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<super::Timestamp>,
    /// The issuer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// The JWT id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// Where a protected route's request carried the token when it was not in
    /// `Authorization`: `query` for the URI query's `access_token` (RFC 6750 §2.3). Absent
    /// for a token sent in `Authorization`, and for every token an OAuth endpoint's event is
    /// about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent_in: Option<TokenSentIn>,
    /// The end user the token was issued for, when the event is about someone else's token
    /// (introspection: the caller is `actor`, the token's owner is here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The claims that were cut to the recorded limits (names as in the token: `scope`,
    /// `aud`, `sub`, ...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub truncated: Vec<&'static str>,
    /// The `token_type_hint` sent with it (revocation, introspection) or its type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub type_hint: Option<String>,
    /// What a token whose verdict is not `valid` claims about itself: the attacker's words,
    /// kept apart from `actor` and `scopes.granted`, which only a valid token fills.
    #[serde(skip_serializing_if = "absent_or_empty")]
    pub unverified: Option<Box<UnverifiedClaims>>,
    /// The verification verdict.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
}

/// The `token.unverified` object: claims of a token that did not verify (or that nothing
/// could verify), recorded for investigation and never as facts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct UnverifiedClaims {
    /// `client_id`, `azp` or `cid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The `act` chain (RFC 8693), as `actor.delegation` would record it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub delegation: Vec<Delegate>,
    /// `scope` / `scp`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// `sub` (or `username`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

impl UnverifiedClaims {
    /// True when no field is set.
    pub fn is_empty(&self) -> bool {
        self.subject.is_none()
            && self.client_id.is_none()
            && self.scopes.is_empty()
            && self.delegation.is_empty()
    }
}

impl TokenDetails {
    /// Details holding only a fingerprint.
    pub fn from_fingerprint(fingerprint: TokenFingerprint) -> Self {
        TokenDetails {
            fingerprint,
            format: None,
            jti: None,
            issuer: None,
            audience: Vec::new(),
            binding: None,
            issued_at: None,
            expires_at: None,
            type_hint: None,
            active: None,
            verdict: None,
            sent_in: None,
            subject: None,
            client_id: None,
            unverified: None,
            truncated: Vec::new(),
        }
    }
}

/// The `token.binding` object: a sender-constrained token (RFC 9449 DPoP, RFC 8705 mutual
/// TLS) and the proof of possession that came with it.
///
/// Serialised by hand because one key, `x5t#S256`, is not a Rust name; the keys are written
/// in RFC 8785 order like every other object's.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenBinding {
    /// True when a token bound to a key was presented as a plain `Bearer` token, without
    /// the proof its binding asks for.
    pub downgrade: bool,
    /// The RFC 7638 thumbprint of the key a DPoP-bound token is bound to (`cnf.jkt`), else
    /// that of the proof's key.
    pub jkt: Option<String>,
    /// `dpop` or `mtls`.
    pub method: BindingMethod,
    /// The outcome of the DPoP proof or the certificate match.
    pub proof: Option<ProofOutcome>,
    /// The thumbprint of the proof's key, when it is not `jkt` (a `key_mismatch`).
    pub proof_jkt: Option<String>,
    /// The thumbprint of the client certificate presented, when it is not `x5t#S256` (a
    /// `key_mismatch`): serialised as `proof_x5t#S256`.
    pub proof_x5t_s256: Option<String>,
    /// The SHA-256 thumbprint (base64url) of the client certificate a token is bound to
    /// (`cnf.x5t#S256`), else that of the certificate presented.
    pub x5t_s256: Option<String>,
}

impl Serialize for TokenBinding {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        if self.downgrade {
            map.serialize_entry("downgrade", &true)?;
        }
        if let Some(jkt) = &self.jkt {
            map.serialize_entry("jkt", jkt)?;
        }
        map.serialize_entry("method", &self.method)?;
        if let Some(proof) = &self.proof {
            map.serialize_entry("proof", proof)?;
        }
        if let Some(proof_jkt) = &self.proof_jkt {
            map.serialize_entry("proof_jkt", proof_jkt)?;
        }
        if let Some(x5t) = &self.proof_x5t_s256 {
            map.serialize_entry("proof_x5t#S256", x5t)?;
        }
        if let Some(x5t) = &self.x5t_s256 {
            map.serialize_entry("x5t#S256", x5t)?;
        }
        map.end()
    }
}

/// How a token is bound to its sender.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum BindingMethod {
    /// To a key, proved by a DPoP proof per request (RFC 9449).
    Dpop,
    /// To a client certificate, proved by mutual TLS (RFC 8705).
    Mtls,
}

impl BindingMethod {
    /// `dpop` or `mtls`.
    pub fn as_str(self) -> &'static str {
        match self {
            BindingMethod::Dpop => "dpop",
            BindingMethod::Mtls => "mtls",
        }
    }
}

/// Where a protected route's request carried its access token, when not in the
/// `Authorization` header (`token.sent_in`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TokenSentIn {
    /// The URI query's `access_token` parameter (RFC 6750 §2.3), which puts the token in
    /// URLs: server and proxy logs, browser history, `Referer`.
    Query,
}

impl TokenSentIn {
    /// `query`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenSentIn::Query => "query",
        }
    }
}

/// A token known only by its fingerprint (`refresh_token`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct TokenRef {
    /// How the token is bound to its sender: a refresh token issued to a public client with
    /// a DPoP proof is bound to the proof's key (RFC 9449 §5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binding: Option<TokenBinding>,
    /// `sha256:` and 32 hex characters.
    pub fingerprint: TokenFingerprint,
}

impl TokenRef {
    /// A token known by its fingerprint, bound to nothing.
    pub fn new(fingerprint: TokenFingerprint) -> Self {
        TokenRef {
            binding: None,
            fingerprint,
        }
    }
}

/// The `oauth` object: request details beyond the core fields.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct OAuthDetails {
    /// Token exchange: the acting party (`act.sub`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub act: Option<String>,
    /// Token exchange: the fingerprint of the actor token the request presented (RFC 8693
    /// `actor_token`; never its value).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor_token: Option<TokenRef>,
    /// Token exchange: the actor token's type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor_token_type: Option<String>,
    /// Requested audiences (RFC 8693).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub audience: Vec<String>,
    /// CIBA: the fingerprint of the `auth_req_id` the backchannel authentication endpoint
    /// answered, and of the one a CIBA token request sent (never its value): the two join.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_req_id_fingerprint: Option<TokenFingerprint>,
    /// Set to `false` when a body was too large or incomplete to inspect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_inspected: Option<bool>,
    /// Which bodies were not inspected, and why: `request_too_large`,
    /// `request_incomplete`, `response_too_large`, `response_incomplete`,
    /// `request_unreadable`, `response_unreadable`, `request_not_a_form`,
    /// `request_over_budget`, `response_over_budget`, `request_encoded`, `response_encoded`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub body_not_inspected: Vec<String>,
    /// Token, revocation, introspection, pushed authorization, device authorization and CIBA
    /// backchannel authentication requests that named two clients (an HTTP Basic header, a
    /// client assertion's `sub` or `iss`, a form `client_id` and a request object's
    /// `client_id` that disagree; RFC 6749 §2.3 allows one authentication method per
    /// request), and authorization requests whose query names another client than the
    /// pushed request they present or the request object they carry (RFC 9101 §6.3): the
    /// one that is not `actor.client_id`. When the access token issued is a
    /// JWT naming another client than the request's (not merely in another case, nor a
    /// token exchange's audience), the server's word is `actor.client_id` and the request's
    /// name is this. The event's severity is at least `warning`. A request naming more than
    /// two clients has the first other one here, and all of them in
    /// `conflicting_client_ids`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conflicting_client_id: Option<String>,
    /// Every client the request named besides `actor.client_id`, each once, in the order
    /// read (`conflicting_client_id` first), at most 8: present whenever
    /// `conflicting_client_id` is. A request may name three or more (HTTP Basic, a form
    /// `client_id`, a client assertion's `sub` and `iss`; a query's `client_id`, a form
    /// body's and a request object's), each of which a server may have acted for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conflicting_client_ids: Vec<String>,
    /// Device grant (RFC 8628): the fingerprint of the polled device code, and of the device
    /// code the device authorization endpoint answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_code_fingerprint: Option<TokenFingerprint>,
    /// Token requests: the DPoP proof the request sent (`jkt` of its key, `proof` outcome),
    /// whether or not a token came of it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dpop: Option<TokenBinding>,
    /// Which endpoint an event is about when its kind does not say: `userinfo` (a
    /// protected-route event at a path the endpoints name), `device_authorization` or
    /// `backchannel_authentication` (`AuthorizationRequested`, `AuthorizationFailed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Token exchange: the type of the token issued (the response's `issued_token_type`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<String>,
    /// The PKCE `code_challenge_method` (`S256`, `plain`); the verifier is never recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pkce_method: Option<String>,
    /// Refresh grant: the refresh token the client presented (the new one, when the server
    /// rotates it, is `refresh_token`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presented_refresh_token: Option<TokenRef>,
    /// `true` on the event of a pushed authorization request (RFC 9126): the request was
    /// sent to the pushed authorization request endpoint, not to the authorization endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pushed: Option<bool>,
    /// An application-supplied reason (revocation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// How many identical polls (device code) this event stands for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeated: Option<u64>,
    /// Parameters the request sent more than once although RFC 6749 §3.1/§3.2 allows them
    /// once (their values are ambiguous and none is recorded).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub repeated_parameters: Vec<String>,
    /// PAR (RFC 9126): the fingerprint of the `request_uri` the pushed authorization request
    /// endpoint returned, and of the `request_uri` an authorization request presented, so the
    /// two events can be joined; the value itself is never recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_uri_fingerprint: Option<TokenFingerprint>,
    /// Token exchange: the type of token the client asked for (`requested_token_type`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_token_type: Option<String>,
    /// Resource indicators (RFC 8707).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resource: Vec<String>,
    /// `response_type` of an authorization request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_type: Option<String>,
    /// Token exchange: the fingerprint of the subject token the request presented (RFC 8693
    /// `subject_token`; never its value).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_token: Option<TokenRef>,
    /// Token exchange: the subject token's type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_token_type: Option<String>,
}

impl OAuthDetails {
    /// True when no field is set.
    pub fn is_empty(&self) -> bool {
        self == &OAuthDetails::default()
    }
}

/// The `http` object.
///
/// Built with [`HttpInfo::new`], its `route` set afterwards when known. The struct is
/// `#[non_exhaustive]`, so that a field added to the schema breaks no one who builds it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct HttpInfo {
    /// Milliseconds from arrival to the end of the response body.
    pub duration_ms: f64,
    /// The request method; empty (and omitted) when the request head could not be read.
    /// The standard methods are borrowed (`HttpInfo::method_of`), so that recording one
    /// allocates nothing.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub method: std::borrow::Cow<'static, str>,
    /// The path, without query string; empty (and omitted) when the request head could not
    /// be read. Up to 24 bytes are held inline, so most paths cost no allocation.
    #[serde(skip_serializing_if = "CompactString::is_empty")]
    pub path: CompactString,
    /// The matched route template (`/api/users/{id}`), when known; inline like `path`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<CompactString>,
    /// The response status; absent when no response was produced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

impl HttpInfo {
    /// A request's `method` and `path` (without query string), the response's `status`
    /// (`None` when no response was produced) and the milliseconds from the request's
    /// arrival to the end of the response body; no route.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use oauth_audit::event::{AuditEvent, EventKind, HttpInfo, Outcome, ServiceInfo, Timestamp};
    ///
    /// let method = HttpInfo::method_of(&http::Method::GET);
    /// let mut http = HttpInfo::new(method, "/orders/42", Some(200), 3.5);
    /// http.route = Some("/orders/{id}".into());
    /// let mut event = AuditEvent::new(
    ///     Arc::new(ServiceInfo::new("orders-api")),
    ///     Timestamp::now(),
    ///     EventKind::ResourceAccessed,
    ///     Outcome::Success,
    /// );
    /// event.http = Some(http);
    /// let json = serde_json::to_value(&event).unwrap();
    /// assert_eq!(json["http"]["path"], "/orders/42");
    /// assert_eq!(json["http"]["route"], "/orders/{id}");
    /// assert_eq!(json["http"]["status"], 200);
    /// assert_eq!(json["http"]["duration_ms"], 3.5);
    /// ```
    pub fn new(
        method: impl Into<std::borrow::Cow<'static, str>>,
        path: impl Into<CompactString>,
        status: Option<u16>,
        duration_ms: f64,
    ) -> HttpInfo {
        HttpInfo {
            duration_ms,
            method: method.into(),
            path: path.into(),
            route: None,
            status,
        }
    }

    /// The name of `method` as `method` holds it: borrowed for the nine methods of RFC 9110
    /// and RFC 5789 (`PATCH`), copied for an extension method.
    ///
    /// ```
    /// use std::borrow::Cow;
    /// use oauth_audit::event::HttpInfo;
    ///
    /// assert!(matches!(HttpInfo::method_of(&http::Method::GET), Cow::Borrowed("GET")));
    /// let purge = http::Method::from_bytes(b"PURGE").unwrap();
    /// assert!(matches!(HttpInfo::method_of(&purge), Cow::Owned(m) if m == "PURGE"));
    /// ```
    pub fn method_of(method: &http::Method) -> std::borrow::Cow<'static, str> {
        const STANDARD: [&str; 9] = [
            "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "CONNECT", "TRACE",
        ];
        let name = method.as_str();
        match STANDARD.iter().find(|standard| **standard == name) {
            Some(standard) => std::borrow::Cow::Borrowed(standard),
            None => std::borrow::Cow::Owned(name.to_owned()),
        }
    }
}

/// The `source` object.
///
/// Built from [`Source::default`], which knows nothing, by setting its fields. The struct is
/// `#[non_exhaustive]`, so that a field added to the schema breaks no one who builds it.
///
/// ```
/// use oauth_audit::event::Source;
///
/// let mut source = Source::default();
/// source.ip = Some([203, 0, 113, 9].into());
/// source.user_agent = Some("curl/8.5.0".into());
/// assert!(!source.is_empty());
/// assert_eq!(
///     serde_json::to_value(&source).unwrap(),
///     serde_json::json!({"ip": "203.0.113.9", "user_agent": "curl/8.5.0"})
/// );
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Source {
    /// The network the address belongs to, from enrichment ([`crate::geo`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub r#as: Option<AutonomousSystem>,
    /// The raw forwarding chain, when present.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub forwarded_for: Vec<String>,
    /// The other forwarding headers that came (lower-case name to value, sanitised, at most
    /// 256 bytes each): recorded, never believed.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub forwarded_headers: std::collections::BTreeMap<String, String>,
    /// Where the address is, from enrichment ([`crate::geo`]); for a private or loopback
    /// address only its `name`, saying so. Boxed: only with enrichment on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub geo: Option<Box<Geo>>,
    /// The client address (see `docs/events.md` for the proxy rules).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpAddr>,
    /// The user agent, at most 512 bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

impl Source {
    /// True when nothing is known about the source: then the event leaves `source` out.
    pub fn is_empty(&self) -> bool {
        // Taken apart without `..`: a field added here must be counted too.
        let Source {
            r#as,
            forwarded_for,
            forwarded_headers,
            geo,
            ip,
            user_agent,
        } = self;
        r#as.is_none()
            && forwarded_for.is_empty()
            && forwarded_headers.is_empty()
            && geo.is_none()
            && ip.is_none()
            && user_agent.is_none()
    }
}

/// `source.geo`: where an address is, as a geolocation database places it
/// ([`crate::geo::GeoIp`]).
///
/// An address that no database can place (loopback, private, link-local...) is not looked
/// up: it carries only `name`, saying which kind it is.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Geo {
    /// The city's English name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// The country, as an ISO 3166-1 alpha-2 code (`FR`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// Latitude in degrees.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lat: Option<f64>,
    /// Longitude in degrees.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lon: Option<f64>,
    /// For an address no database places, what it is: `loopback`, `private`, `link_local`,
    /// `shared` (RFC 6598 carrier-grade NAT) or `unspecified`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The English name of the country's principal subdivision (state, province...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// That subdivision as an ISO 3166-2 code (`US-CA`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region_code: Option<String>,
}

impl Geo {
    /// A place with these coordinates and nothing else known.
    pub fn at(lat: f64, lon: f64) -> Geo {
        Geo {
            lat: Some(lat),
            lon: Some(lon),
            ..Geo::default()
        }
    }

    /// The coordinates, when both are known.
    pub fn location(&self) -> Option<(f64, f64)> {
        Some((self.lat?, self.lon?))
    }
}

/// `source.as`: the autonomous system (network) an address belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct AutonomousSystem {
    /// The AS number.
    pub number: u32,
    /// The organisation that runs it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
}

impl AutonomousSystem {
    /// An autonomous system by number and organisation.
    pub fn new(number: u32, org: Option<String>) -> AutonomousSystem {
        AutonomousSystem { number, org }
    }
}

/// The `error` object.
///
/// A service inside the [`AuditLayer`](crate::AuditLayer) can describe a failure that its
/// response does not (a gateway whose upstream is unreachable, say) by inserting an
/// `ErrorInfo` into the response's extensions: the layer removes it and records it as the
/// event's `error`, unless the response itself (a `WWW-Authenticate` challenge, an OAuth
/// error body) or the token verdict already gave one. Its `description` is recorded as a
/// response's is: scrubbed of the request's secrets (its cookies' values among them), then
/// sanitised and bounded (see [`scrub`](crate::event::scrub)); an application quoting the
/// request back does not put the request's credentials in the trail. So is its `code`,
/// bounded to 64 bytes, unless it is an error code the OAuth and OpenID Connect
/// specifications register (`invalid_token`), kept as it is; a code of plain words with
/// nothing secret in it (`upstream_unreachable`) is recorded as it was written.
/// At an OAuth endpoint whose request body was not inspected (too large, not a form), whose
/// secrets are therefore unknown, a code that is neither registered, nor one of
/// [`error_code`](crate::event::error_code), nor `http_<status>` is not recorded.
///
/// ```
/// use std::convert::Infallible;
/// use http::{Request, Response, StatusCode};
/// use http_body_util::BodyExt;
/// use oauth_audit::event::ErrorInfo;
/// use oauth_audit::writer::{Auditor, MemoryWriter};
/// use oauth_audit::AuditLayer;
/// use tower::{ServiceBuilder, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let memory = MemoryWriter::new();
/// let auditor = Auditor::new(memory.clone());
/// let gateway = ServiceBuilder::new()
///     .layer(AuditLayer::new(auditor.clone()))
///     .service_fn(|_request: Request<oauth_audit::RequestBody<String>>| async {
///         let mut response = Response::new(String::from("502 Bad Gateway"));
///         *response.status_mut() = StatusCode::BAD_GATEWAY;
///         let mut error = ErrorInfo::new("upstream_unreachable");
///         error.description = Some("connection refused".into());
///         response.extensions_mut().insert(error);
///         Ok::<_, Infallible>(response)
///     });
/// let response = gateway.oneshot(Request::new(String::new())).await.unwrap();
/// assert!(response.extensions().get::<ErrorInfo>().is_none(), "addressed to the layer only");
/// response.into_body().collect().await.unwrap(); // the event is emitted at the body's end
/// auditor.shutdown().await;
/// assert_eq!(memory.json()[0]["error"]["code"], "upstream_unreachable");
/// assert_eq!(memory.json()[0]["http"]["status"], 502);
/// # }
/// ```
///
/// Built with [`ErrorInfo::new`], its `description` set afterwards. The struct is
/// `#[non_exhaustive]`, so that a field added to the schema breaks no one who builds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ErrorInfo {
    /// An RFC 6749/6750/7009/7662 error code, or a token verdict.
    pub code: String,
    /// From the response, sanitised.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl ErrorInfo {
    /// The longest `code` recorded of an `ErrorInfo` a service reported, as of a response's
    /// `error`: RFC 6749 error codes are short words.
    pub(crate) const MAX_REPORTED_CODE: usize = 64;

    /// An error of this `code`, with no description.
    ///
    /// ```
    /// use oauth_audit::event::ErrorInfo;
    ///
    /// let mut error = ErrorInfo::new("upstream_unreachable");
    /// error.description = Some("connection refused".into());
    /// assert_eq!(
    ///     serde_json::to_value(&error).unwrap(),
    ///     serde_json::json!({"code": "upstream_unreachable", "description": "connection refused"})
    /// );
    /// assert!(serde_json::to_value(ErrorInfo::new("forbidden")).unwrap().get("description").is_none());
    /// ```
    pub fn new(code: impl Into<String>) -> ErrorInfo {
        ErrorInfo {
            code: code.into(),
            description: None,
        }
    }

    /// What the event records of an `ErrorInfo` a service reported: the description
    /// scrubbed of `secrets` and sanitised to `max_description` bytes; the code, which an
    /// application writes and may make of request data (`session:<cookie>`), likewise
    /// unless it is a code the OAuth specifications register, and to at most
    /// [`MAX_REPORTED_CODE`](Self::MAX_REPORTED_CODE) bytes, as a response's code is.
    pub(crate) fn reported(&self, secrets: &super::Secrets<'_>, max_description: usize) -> Self {
        ErrorInfo {
            code: super::scrub_code(&self.code, secrets, Self::MAX_REPORTED_CODE),
            description: self
                .description
                .as_deref()
                .map(|d| super::scrub(d, secrets, max_description)),
        }
    }
}

/// The `alert` object of a `SecurityAlert`.
///
/// The detector ([`crate::detect`]) raises these. To build one yourself (to test what reads
/// alerts, say), use [`Alert::new`] and set the optional fields afterwards. The struct is
/// `#[non_exhaustive]`, so that a field added to the schema breaks no one who builds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Alert {
    /// How many occurrences.
    pub count: u64,
    /// The ids of the events counted, oldest first (at most 20).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<String>,
    /// The time of the first occurrence counted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<super::Timestamp>,
    /// What it fired on, as `field=value` pairs (`source.ip=203.0.113.9`).
    pub key: String,
    /// The time of the occurrence that fired it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<super::Timestamp>,
    /// The detector that fired.
    pub rule: String,
    /// Occurrences for the same rule and key between its previous alert and this one, which
    /// raised no alert of their own (one alert per key per cooldown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<u64>,
    /// What the rule found, for people.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// For `impossible_travel`: the two places and how fast one would have gone between.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub travel: Option<Travel>,
    /// Over how many seconds.
    pub window_s: u64,
}

impl Alert {
    /// An alert of `rule` on `key` (`field=value` pairs), for `count` occurrences over
    /// `window_s` seconds: no title, evidence, times, suppressed count or travel.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use oauth_audit::event::{Alert, AuditEvent, EventKind, Outcome, ServiceInfo, Timestamp};
    ///
    /// let mut alert = Alert::new("brute_force", "source.ip=203.0.113.9", 10, 900);
    /// alert.title = Some("Repeated failed logins".into());
    /// let mut event = AuditEvent::new(
    ///     Arc::new(ServiceInfo::new("orders-api")),
    ///     Timestamp::now(),
    ///     EventKind::SecurityAlert,
    ///     Outcome::Unknown,
    /// );
    /// event.alert = Some(Box::new(alert));
    /// let json = serde_json::to_value(&event).unwrap();
    /// assert_eq!(
    ///     json["alert"],
    ///     serde_json::json!({
    ///         "count": 10,
    ///         "key": "source.ip=203.0.113.9",
    ///         "rule": "brute_force",
    ///         "title": "Repeated failed logins",
    ///         "window_s": 900
    ///     })
    /// );
    /// ```
    pub fn new(
        rule: impl Into<String>,
        key: impl Into<String>,
        count: u64,
        window_s: u64,
    ) -> Alert {
        Alert {
            count,
            evidence: Vec::new(),
            first_seen: None,
            key: key.into(),
            last_seen: None,
            rule: rule.into(),
            suppressed: None,
            title: None,
            travel: None,
            window_s,
        }
    }
}

/// `alert.travel`, on an `impossible_travel` alert: where the user was before, where now,
/// and the speed the trip would have needed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Travel {
    /// Great-circle distance between the two places, in kilometres (rounded).
    pub distance_km: u64,
    /// The earlier sign-in's place.
    pub from: Place,
    /// Time between the two sign-ins, in seconds.
    pub seconds: u64,
    /// The speed the trip would have needed, in km/h (rounded; the greatest `u64` when both
    /// came at once).
    pub speed_kmh: u64,
    /// The later sign-in's place.
    pub to: Place,
}

/// One end of an [`alert.travel`](Travel).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Place {
    /// `source.geo.city`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// `source.geo.country`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// `source.ip`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
}

impl Place {
    /// A place by city, country and address.
    pub fn new(city: Option<String>, country: Option<String>, ip: Option<String>) -> Place {
        Place { city, country, ip }
    }
}

/// The `dropped` object of an `AuditEventsDropped` event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Dropped {
    /// How many events were lost or delayed.
    pub count: u64,
    /// With chaining on: the sequence numbers of the chained events it lost, so that
    /// `oauth-audit verify` reports their gap as announced, not as deleted events.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ranges: Vec<SeqRange>,
    /// Why.
    pub reason: DropReason,
    /// With a checkpoint key: `<key name> <base64(key id || Ed25519 signature)>` over the
    /// RFC 8785 form of this event without `dropped.signature`, so that an announcement
    /// cannot be forged to cover deleted events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// The writer concerned.
    pub sink: String,
}

/// Consecutive sequence numbers of one stream, both ends included.
///
/// The writers record these in `dropped.ranges` when they lose chained events. To build one
/// yourself (to test what reads announcements, say), use [`SeqRange::new`]. The struct is
/// `#[non_exhaustive]`, so that a field added to the schema breaks no one who builds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SeqRange {
    /// The first sequence number.
    pub first: u64,
    /// The last sequence number.
    pub last: u64,
    /// The stream.
    pub stream: Arc<str>,
}

impl SeqRange {
    /// The sequence numbers `first` to `last`, both included, of `stream`.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use oauth_audit::event::{AuditEvent, DropReason, SeqRange, ServiceInfo};
    ///
    /// let stream = "0193a7c2-5b1e-7c3d-9f00-3c2a1b0d9e8f";
    /// let mut event = AuditEvent::dropped(
    ///     Arc::new(ServiceInfo::new("orders-api")),
    ///     5,
    ///     DropReason::QueueFull,
    ///     "rotating",
    /// );
    /// event.dropped.as_mut().unwrap().ranges = vec![SeqRange::new(stream, 100, 104)];
    /// let json = serde_json::to_value(&event).unwrap();
    /// assert_eq!(
    ///     json["dropped"]["ranges"],
    ///     serde_json::json!([{"first": 100, "last": 104, "stream": stream}])
    /// );
    /// ```
    pub fn new(stream: impl Into<Arc<str>>, first: u64, last: u64) -> SeqRange {
        SeqRange {
            first,
            last,
            stream: stream.into(),
        }
    }
}

/// The `chain` object: where an event sits in its stream's hash chain.
///
/// With [chaining](crate::chain) on, the pipeline gives every event its link. To build one
/// yourself (to hash or canonicalise a chained event outside a pipeline, say), use
/// [`ChainLink::new`]. The struct is `#[non_exhaustive]`, so that a field added to the schema
/// breaks no one who builds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ChainLink {
    /// The hash of the stream's previous event; absent for the first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prev: Option<EventHash>,
    /// The event's number in the stream, from 1.
    pub seq: u64,
    /// The stream: one auditor's sequence of events (a UUID kept across restarts by a
    /// state file).
    pub stream: Arc<str>,
}

impl ChainLink {
    /// Event number `seq` of `stream`, after the event whose hash is `prev` (`None` for the
    /// stream's first event).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use oauth_audit::event::{
    ///     AuditEvent, ChainLink, EventHash, EventKind, Outcome, ServiceInfo, Timestamp,
    /// };
    ///
    /// let service = Arc::new(ServiceInfo::new("orders-api"));
    /// let event = || {
    ///     let (kind, outcome) = (EventKind::ResourceAccessed, Outcome::Success);
    ///     AuditEvent::new(service.clone(), Timestamp::now(), kind, outcome)
    /// };
    /// let stream = "0193a7c2-5b1e-7c3d-9f00-3c2a1b0d9e8f";
    /// let mut first = event();
    /// first.chain = Some(Box::new(ChainLink::new(stream, 1, None)));
    /// let mut second = event();
    /// let prev = EventHash::of_json(&first).unwrap();
    /// second.chain = Some(Box::new(ChainLink::new(stream, 2, Some(prev))));
    ///
    /// let json = serde_json::to_value(&second).unwrap();
    /// assert_eq!(
    ///     json["chain"],
    ///     serde_json::json!({"prev": prev.to_string(), "seq": 2, "stream": stream})
    /// );
    /// assert!(serde_json::to_value(&first).unwrap()["chain"].get("prev").is_none());
    /// ```
    pub fn new(stream: impl Into<Arc<str>>, seq: u64, prev: Option<EventHash>) -> ChainLink {
        ChainLink {
            prev,
            seq,
            stream: stream.into(),
        }
    }
}

/// The `checkpoint` object of an `AuditCheckpoint` event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Checkpoint {
    /// The hash of that event.
    pub hash: EventHash,
    /// The C2SP signed note: origin, `seq`, the hash in base64 and the time, then the
    /// signature line.
    pub note: String,
    /// The last sequence number it covers.
    pub seq: u64,
    /// The stream it seals.
    pub stream: Arc<str>,
}

/// Why events were dropped: the `dropped.reason` field. New reasons may be added, so a
/// `match` outside this crate needs a wildcard arm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DropReason {
    /// The writer's queue was full.
    QueueFull,
    /// The writer failed and gave up on a batch.
    WriteFailed,
    /// Events arrived after shutdown began.
    ShutDown,
    /// A backend was down and its on-disk spool was full.
    SpoolFull,
    /// A backend refused the events themselves; retrying could not help.
    Rejected,
    /// The queue stayed full for the whole blocking timeout of a `Block` overflow policy.
    BlockTimeout,
    /// A processor panicked on the event: passed on as the processor left it, it could be
    /// half-redacted.
    ProcessorPanicked,
}

impl DropReason {
    /// The name as it appears in the `dropped.reason` field (and in metrics labels).
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::WriteFailed => "write_failed",
            DropReason::ShutDown => "shut_down",
            DropReason::SpoolFull => "spool_full",
            DropReason::Rejected => "rejected",
            DropReason::BlockTimeout => "block_timeout",
            DropReason::ProcessorPanicked => "processor_panicked",
        }
    }
}

/// Outside the crate, the `service`, `http`, `source`, `error`, `alert` and `chain` objects
/// and the ranges of `dropped.ranges` cannot be built with a struct literal: they are
/// `#[non_exhaustive]`, so that a field added to the schema breaks no one. None of these
/// examples compiles.
///
/// ```compile_fail,E0639
/// let _ = oauth_audit::event::ServiceInfo { instance: None, name: "api".into() };
/// ```
///
/// ```compile_fail,E0639
/// let _ = oauth_audit::event::HttpInfo {
///     duration_ms: 1.0,
///     method: "GET".into(),
///     path: "/".into(),
///     route: None,
///     status: Some(200),
/// };
/// ```
///
/// ```compile_fail,E0639
/// let _ = oauth_audit::event::Source {
///     ip: None,
///     ..oauth_audit::event::Source::default()
/// };
/// ```
///
/// ```compile_fail,E0639
/// let _ = oauth_audit::event::ErrorInfo { code: "forbidden".into(), description: None };
/// ```
///
/// ```compile_fail,E0639
/// let _ = oauth_audit::event::Alert {
///     count: 10,
///     evidence: Vec::new(),
///     first_seen: None,
///     key: "source.ip=203.0.113.9".into(),
///     last_seen: None,
///     rule: "brute_force".into(),
///     suppressed: None,
///     title: None,
///     travel: None,
///     window_s: 900,
/// };
/// ```
///
/// ```compile_fail,E0639
/// let _ = oauth_audit::event::SeqRange { first: 100, last: 104, stream: "a-stream".into() };
/// ```
///
/// ```compile_fail,E0639
/// let _ = oauth_audit::event::ChainLink { prev: None, seq: 1, stream: "a-stream".into() };
/// ```
#[cfg(doctest)]
pub struct NonExhaustiveDoctests;

#[cfg(test)]
mod tests {
    use super::*;

    /// Paths of empty objects and nulls in a JSON value.
    fn empty_objects(value: &serde_json::Value, path: &str, found: &mut Vec<String>) {
        match value {
            serde_json::Value::Null => found.push(format!("{path} = null")),
            serde_json::Value::Object(map) if map.is_empty() => {
                found.push(format!("{path} = {{}}"))
            }
            serde_json::Value::Object(map) => {
                for (key, value) in map {
                    empty_objects(value, &format!("{path}.{key}"), found);
                }
            }
            serde_json::Value::Array(items) => {
                for (i, value) in items.iter().enumerate() {
                    empty_objects(value, &format!("{path}[{i}]"), found);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn a_source_with_only_forwarding_headers_is_kept() {
        // A server behind a proxy on a Unix socket has no peer address: what the proxy
        // sent is all there is, and the event must not drop it.
        let mut event = AuditEvent::new(
            Arc::new(ServiceInfo::default()),
            Timestamp::now(),
            EventKind::ResourceAccessed,
            Outcome::Success,
        );
        let mut source = Source::default();
        assert!(source.is_empty());
        source
            .forwarded_headers
            .insert("x-real-ip".into(), "203.0.113.7".into());
        assert!(!source.is_empty());
        event.source = Some(source);
        let expected = serde_json::json!({"forwarded_headers": {"x-real-ip": "203.0.113.7"}});
        let serde: serde_json::Value = serde_json::to_value(&event).unwrap();
        assert_eq!(serde["source"], expected);
        let canonical: serde_json::Value =
            serde_json::from_slice(&crate::event::canonical_event::event_json(&event).unwrap())
                .unwrap();
        assert_eq!(canonical["source"], expected);
    }

    #[test]
    fn every_object_is_left_out_when_empty() {
        let mut event = AuditEvent::new(
            Arc::new(ServiceInfo::default()),
            super::super::Timestamp::now(),
            EventKind::ResourceAccessed,
            Outcome::Success,
        );
        // Every optional object present but holding nothing.
        event.actor = Actor::default().into();
        event.scopes = Scopes::default();
        let mut token = TokenDetails::from_fingerprint(TokenFingerprint::of("t"));
        token.unverified = Some(Box::new(UnverifiedClaims::default()));
        event.token = Some(token.into());
        event.oauth = Some(Box::default());
        event.source = Some(Source::default());
        let json = serde_json::to_value(&event).unwrap();
        let mut found = Vec::new();
        empty_objects(&json, "", &mut found);
        assert!(
            found.is_empty(),
            "empty values written: {found:?} in {json}"
        );
        for absent in ["actor", "scopes", "oauth", "source"] {
            assert!(json.get(absent).is_none(), "{absent}");
        }
        assert!(json["token"].get("unverified").is_none());
    }

    /// The chain's RFC 8785 writer is fastest when keys come in order
    /// (`event/canonical.rs`): every serialised struct here declares its fields so.
    #[test]
    fn fields_are_declared_in_key_order() {
        let file = syn::parse_file(include_str!("model.rs")).unwrap();
        let mut checked = 0;
        for item in &file.items {
            let syn::Item::Struct(item) = item else {
                continue;
            };
            let derives_serialize = item.attrs.iter().any(|attr| {
                attr.path().is_ident("derive")
                    && attr
                        .meta
                        .require_list()
                        .is_ok_and(|list| list.tokens.to_string().contains("Serialize"))
            });
            if !derives_serialize {
                continue;
            }
            let keys: Vec<String> = item
                .fields
                .iter()
                .filter(|field| {
                    !field.attrs.iter().any(|attr| {
                        attr.path().is_ident("serde")
                            && attr
                                .meta
                                .require_list()
                                .is_ok_and(|list| list.tokens.to_string() == "skip")
                    })
                })
                .map(|field| {
                    let name = field.ident.as_ref().unwrap().to_string();
                    name.trim_start_matches("r#").to_owned()
                })
                .collect();
            assert!(
                !item
                    .attrs
                    .iter()
                    .chain(item.fields.iter().flat_map(|f| &f.attrs))
                    .any(|attr| attr.path().is_ident("serde")
                        && attr.meta.require_list().is_ok_and(|list| {
                            let tokens = list.tokens.to_string();
                            tokens.contains("rename") || tokens.contains("flatten")
                        })),
                "{}: renamed or flattened fields are not checked here",
                item.ident
            );
            let mut sorted = keys.clone();
            sorted.sort();
            assert_eq!(keys, sorted, "{}: fields out of key order", item.ident);
            checked += 1;
        }
        assert!(checked >= 15, "only {checked} structs found");
    }

    #[test]
    fn client_auth_names_are_what_events_carry() {
        use crate::event::ClientAuth;
        for auth in [
            ClientAuth::ClientSecretBasic,
            ClientAuth::ClientSecretPost,
            ClientAuth::ClientSecretJwt,
            ClientAuth::PrivateKeyJwt,
            ClientAuth::TlsClientAuth,
            ClientAuth::SelfSignedTlsClientAuth,
            ClientAuth::None,
        ] {
            assert_eq!(
                serde_json::to_value(auth).unwrap(),
                serde_json::Value::from(auth.as_str())
            );
        }
    }

    #[test]
    fn drop_reason_names_are_what_events_carry() {
        for reason in [
            DropReason::QueueFull,
            DropReason::WriteFailed,
            DropReason::ShutDown,
            DropReason::SpoolFull,
            DropReason::Rejected,
            DropReason::BlockTimeout,
        ] {
            assert_eq!(
                serde_json::to_value(reason).unwrap(),
                serde_json::Value::from(reason.as_str())
            );
        }
    }
}
