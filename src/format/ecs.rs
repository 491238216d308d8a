//! Elastic Common Schema: an [`AuditEvent`] as an ECS document (`docs/formats.md`).
//!
//! The document borrows from the event and is written by serde in one pass: no intermediate
//! JSON value. What ECS has a field for goes there (`@timestamp`, `event.*`, `user.name`,
//! `source.ip`, `http.*`, `url.path`, `error.*`, `rule.*`, ...); what it has none for goes
//! under `oauth.*`, by its schema v1 name (`oauth.token.fingerprint`, `oauth.scopes.granted`,
//! `oauth.grant_type`; the v1 `oauth` object's own fields keep their names:
//! `oauth.pkce_method`). Tokens appear only as fingerprints, as in every v1 event.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::ser::Serializer;
use serde::Serialize;
use uuid::Uuid;

use crate::token::Delegate;

use crate::event::{
    ActorKind, Alert, AuditEvent, ChainLink, Checkpoint, ClientAuth, Dropped, EventKind,
    OAuthDetails, Scopes, Severity, Timestamp, TokenDetails, TokenRef,
};

/// The ECS version every document claims in `ecs.version`, and whose field definitions
/// (`tests/data/ecs/`) the documents are checked against.
pub const ECS_VERSION: &str = "9.4.0";

/// `event.dataset`.
const DATASET: &str = "oauth_audit.events";

/// An [`AuditEvent`] seen as an ECS document: serialise it with serde.
///
/// ```
/// use std::sync::Arc;
/// use oauth_audit::event::{AuditEvent, EventKind, Outcome, ServiceInfo, Timestamp};
/// use oauth_audit::format::{Ecs, ECS_VERSION};
///
/// let service = Arc::new(ServiceInfo::new("api"));
/// let mut event = AuditEvent::new(service, Timestamp::now(), EventKind::LoginFailed, Outcome::Failure);
/// event.actor.subject = Some("alice".into());
/// let json = serde_json::to_value(Ecs(&event)).unwrap();
/// assert_eq!(json["ecs"]["version"], ECS_VERSION);
/// assert_eq!(json["event"]["category"], serde_json::json!(["authentication", "session"]));
/// assert_eq!(json["event"]["type"], serde_json::json!(["start"]));
/// assert_eq!(json["event"]["outcome"], "failure");
/// assert_eq!(json["user"]["name"], "alice");
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Ecs<'a>(pub &'a AuditEvent);

impl Serialize for Ecs<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Document::of(self.0).serialize(serializer)
    }
}

/// `event.kind`, `event.category` and `event.type`.
type Categorization = (
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
);

/// The categorisation of a kind: categories and types among those ECS allows, each type one
/// its categories expect (`tests/data/ecs/` pins both lists).
fn categorization(kind: EventKind) -> Categorization {
    use EventKind::*;
    match kind {
        AccessTokenIssued | TokenRequestFailed | LoginSucceeded | LoginFailed => {
            ("event", &["authentication", "session"], &["start"])
        }
        TokenRevoked | TokenRevocationFailed | LogoutSucceeded | LogoutFailed => {
            ("event", &["authentication", "session"], &["end"])
        }
        TokenIntrospected
        | TokenIntrospectionFailed
        | AuthorizationRequested
        | AuthorizationGranted
        | AuthorizationFailed => ("event", &["authentication"], &["info"]),
        ResourceAccessed => ("event", &["api"], &["access", "allowed"]),
        AccessDenied => ("event", &["api"], &["access", "denied"]),
        // `signal` is reserved for Kibana's own detections.
        SecurityAlert => ("alert", &["intrusion_detection"], &["info"]),
        AuditEventsDropped => ("event", &[], &["error"]),
        AuditCheckpoint => ("event", &[], &["info"]),
    }
}

/// `log.level`: the v1 severity's word.
fn log_level(severity: Severity) -> &'static str {
    match severity {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Critical => "critical",
    }
}

fn is_empty_map(map: &&BTreeMap<String, String>) -> bool {
    map.is_empty()
}

fn is_empty_slice<T>(items: &&[T]) -> bool {
    items.is_empty()
}

#[derive(Serialize)]
struct Document<'a> {
    #[serde(rename = "@timestamp")]
    timestamp: &'a Timestamp,
    ecs: Version,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<Error<'a>>,
    event: Event<'a>,
    #[serde(skip_serializing_if = "Http::is_empty")]
    http: Http<'a>,
    #[serde(skip_serializing_if = "is_empty_map")]
    labels: &'a BTreeMap<String, String>,
    log: Log,
    #[serde(skip_serializing_if = "Vendor::is_empty")]
    oauth: Vendor<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<Rule<'a>>,
    service: Service<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<EcsSource<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    span: Option<Id<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trace: Option<Id<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<Url<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<User<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_agent: Option<UserAgent<'a>>,
}

impl<'a> Document<'a> {
    fn of(event: &'a AuditEvent) -> Self {
        let (kind, category, types) = categorization(event.kind);
        let level = log_level(event.severity);
        let source = event.source.as_ref();
        let http = event.http.as_ref();
        let alert = event.alert.as_deref();
        Document {
            timestamp: &event.time,
            ecs: Version {
                version: ECS_VERSION,
            },
            error: event.error.as_ref().map(|error| Error {
                code: &error.code,
                message: error.description.as_deref(),
            }),
            event: Event {
                action: event.kind.as_str(),
                category,
                dataset: DATASET,
                duration: http.map(|h| (h.duration_ms * 1_000_000.0).round() as i64),
                end: alert.and_then(|a| a.last_seen.as_ref()),
                id: &event.id,
                kind,
                // ECS's outcomes are v1's: success, failure, unknown.
                outcome: event.outcome.as_str(),
                reason: event.dropped.as_ref().map(|d| d.reason.as_str()),
                start: alert.and_then(|a| a.first_seen.as_ref()),
                types,
            },
            http: Http {
                request: Request {
                    id: event.request_id.as_deref(),
                    method: http.map(|h| h.method.as_ref()).filter(|m| !m.is_empty()),
                },
                response: http
                    .and_then(|h| h.status)
                    .map(|status_code| Response { status_code }),
            },
            labels: &event.labels,
            log: Log { level },
            oauth: Vendor {
                actor: VendorActor {
                    client_id: event.actor.client_id.as_deref(),
                    delegation: &event.actor.delegation,
                    kind: event.actor.kind,
                },
                alert,
                chain: event.chain.as_deref(),
                checkpoint: event.checkpoint.as_deref(),
                client_auth: event.client_auth,
                dropped: event.dropped.as_deref(),
                grant_type: event.grant_type.as_deref(),
                http: http
                    .and_then(|h| h.route.as_deref())
                    .map(|route| Route { route }),
                details: event.oauth.as_deref().filter(|o| !o.is_empty()),
                redirect_uri: event.redirect_uri.as_deref(),
                refresh_token: event.refresh_token.as_deref(),
                scopes: &event.scopes,
                source: VendorSource {
                    forwarded_for: source.map_or(&[][..], |s| &s.forwarded_for[..]),
                    forwarded_headers: source.map(|s| &s.forwarded_headers),
                },
                token: event.token.as_deref(),
            },
            rule: alert.map(|alert| Rule {
                id: &alert.rule,
                name: alert.title.as_deref(),
            }),
            service: Service {
                name: &event.service.name,
                node: event
                    .service
                    .instance
                    .as_deref()
                    .map(|name| ServiceNode { name }),
            },
            source: source.and_then(EcsSource::of),
            span: event.span_id.as_deref().map(|id| Id { id }),
            trace: event.trace_id.as_deref().map(|id| Id { id }),
            url: http
                .map(|h| h.path.as_str())
                .filter(|p| !p.is_empty())
                .map(|path| Url { path }),
            user: event.actor.subject.as_deref().map(|name| User { name }),
            user_agent: source
                .and_then(|s| s.user_agent.as_deref())
                .map(|original| UserAgent { original }),
        }
    }
}

#[derive(Serialize)]
struct Version {
    version: &'static str,
}

#[derive(Serialize)]
struct Error<'a> {
    code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
}

#[derive(Serialize)]
struct Event<'a> {
    action: &'static str,
    #[serde(skip_serializing_if = "is_empty_slice")]
    category: &'static [&'static str],
    dataset: &'static str,
    /// Nanoseconds, as ECS counts them.
    #[serde(skip_serializing_if = "Option::is_none")]
    duration: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end: Option<&'a Timestamp>,
    id: &'a Uuid,
    kind: &'static str,
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    start: Option<&'a Timestamp>,
    #[serde(rename = "type")]
    types: &'static [&'static str],
}

#[derive(Serialize)]
struct Http<'a> {
    #[serde(skip_serializing_if = "Request::is_empty")]
    request: Request<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response: Option<Response>,
}

impl Http<'_> {
    fn is_empty(&self) -> bool {
        self.request.is_empty() && self.response.is_none()
    }
}

#[derive(Serialize)]
struct Request<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<&'a str>,
}

impl Request<'_> {
    fn is_empty(&self) -> bool {
        self.id.is_none() && self.method.is_none()
    }
}

#[derive(Serialize)]
struct Response {
    status_code: u16,
}

#[derive(Serialize)]
struct Log {
    level: &'static str,
}

/// `oauth.*`: what ECS has no field for, by its schema v1 name.
#[derive(Serialize)]
struct Vendor<'a> {
    #[serde(skip_serializing_if = "VendorActor::is_empty")]
    actor: VendorActor<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alert: Option<&'a Alert>,
    #[serde(skip_serializing_if = "Option::is_none")]
    chain: Option<&'a ChainLink>,
    #[serde(skip_serializing_if = "Option::is_none")]
    checkpoint: Option<&'a Checkpoint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_auth: Option<ClientAuth>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dropped: Option<&'a Dropped>,
    #[serde(skip_serializing_if = "Option::is_none")]
    grant_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http: Option<Route<'a>>,
    /// The v1 `oauth` object's fields, under their own names.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    details: Option<&'a OAuthDetails>,
    #[serde(skip_serializing_if = "Option::is_none")]
    redirect_uri: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a TokenRef>,
    #[serde(skip_serializing_if = "Scopes::is_empty")]
    scopes: &'a Scopes,
    #[serde(skip_serializing_if = "VendorSource::is_empty")]
    source: VendorSource<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<&'a TokenDetails>,
}

impl Vendor<'_> {
    fn is_empty(&self) -> bool {
        self.actor.is_empty()
            && self.alert.is_none()
            && self.chain.is_none()
            && self.checkpoint.is_none()
            && self.client_auth.is_none()
            && self.dropped.is_none()
            && self.grant_type.is_none()
            && self.http.is_none()
            && self.details.is_none()
            && self.redirect_uri.is_none()
            && self.refresh_token.is_none()
            && self.scopes.is_empty()
            && self.source.is_empty()
            && self.token.is_none()
    }
}

#[derive(Serialize)]
struct VendorActor<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<&'a str>,
    #[serde(skip_serializing_if = "<[Delegate]>::is_empty")]
    delegation: &'a [Delegate],
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<ActorKind>,
}

impl VendorActor<'_> {
    fn is_empty(&self) -> bool {
        self.client_id.is_none() && self.delegation.is_empty() && self.kind.is_none()
    }
}

#[derive(Serialize)]
struct Route<'a> {
    route: &'a str,
}

#[derive(Serialize)]
struct VendorSource<'a> {
    #[serde(skip_serializing_if = "is_empty_slice")]
    forwarded_for: &'a [String],
    #[serde(skip_serializing_if = "no_headers")]
    forwarded_headers: Option<&'a BTreeMap<String, String>>,
}

fn no_headers(headers: &Option<&BTreeMap<String, String>>) -> bool {
    headers.is_none_or(|h| h.is_empty())
}

impl VendorSource<'_> {
    fn is_empty(&self) -> bool {
        self.forwarded_for.is_empty() && no_headers(&self.forwarded_headers)
    }
}

#[derive(Serialize)]
struct Rule<'a> {
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
}

#[derive(Serialize)]
struct Service<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    node: Option<ServiceNode<'a>>,
}

#[derive(Serialize)]
struct ServiceNode<'a> {
    name: &'a str,
}

/// `source.ip`, `source.geo.*` and `source.as.*`.
#[derive(Serialize)]
struct EcsSource<'a> {
    #[serde(rename = "as", skip_serializing_if = "Option::is_none")]
    autonomous_system: Option<EcsAs<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    geo: Option<EcsGeo<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip: Option<IpAddr>,
}

impl<'a> EcsSource<'a> {
    fn of(source: &'a crate::event::Source) -> Option<Self> {
        let mapped = EcsSource {
            autonomous_system: source.r#as.as_ref().map(|a| EcsAs {
                number: a.number,
                organization: a.org.as_deref().map(|name| Name { name }),
            }),
            geo: source.geo.as_ref().map(|geo| EcsGeo {
                city_name: geo.city.as_deref(),
                country_iso_code: geo.country.as_deref(),
                location: geo.location().map(|(lat, lon)| GeoPoint { lat, lon }),
                name: geo.name.as_deref(),
                region_iso_code: geo.region_code.as_deref(),
                region_name: geo.region.as_deref(),
            }),
            ip: source.ip,
        };
        let empty =
            mapped.autonomous_system.is_none() && mapped.geo.is_none() && mapped.ip.is_none();
        (!empty).then_some(mapped)
    }
}

#[derive(Serialize)]
struct EcsAs<'a> {
    number: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    organization: Option<Name<'a>>,
}

#[derive(Serialize)]
struct Name<'a> {
    name: &'a str,
}

#[derive(Serialize)]
struct EcsGeo<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    city_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    country_iso_code: Option<&'a str>,
    /// A `geo_point` as an object.
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<GeoPoint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    region_iso_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    region_name: Option<&'a str>,
}

#[derive(Serialize)]
struct GeoPoint {
    lat: f64,
    lon: f64,
}

#[derive(Serialize)]
struct Id<'a> {
    id: &'a str,
}

#[derive(Serialize)]
struct Url<'a> {
    path: &'a str,
}

#[derive(Serialize)]
struct User<'a> {
    name: &'a str,
}

#[derive(Serialize)]
struct UserAgent<'a> {
    original: &'a str,
}
