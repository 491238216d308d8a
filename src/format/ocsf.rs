//! Open Cybersecurity Schema Framework: an [`AuditEvent`] as an OCSF event
//! (`docs/formats.md`).
//!
//! Each kind becomes an event of one OCSF class: Authentication (3002, `auth_protocol_id` 6,
//! OAuth 2.0) for the token, revocation, authorization and login endpoints, API Activity
//! (6003) for introspection, Web Resource Access Activity (6004, Access Grant / Access Deny)
//! for protected routes, Detection Finding (2004) for alerts and Event Log Activity (1008)
//! for the trail's own `AuditEventsDropped` and `AuditCheckpoint`. What OCSF has an
//! attribute for goes there; the rest goes into `unmapped`, by its schema v1 name
//! (`unmapped.token.fingerprint`, `unmapped.scopes.granted`, `unmapped.oauth.pkce_method`).
//! The event borrows from the [`AuditEvent`] and is written by serde in one pass. Tokens
//! appear only as fingerprints, as in every v1 event.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::ser::{SerializeSeq, Serializer};
use serde::Serialize;
use uuid::Uuid;

use crate::event::{
    ActorKind, Alert, AuditEvent, ChainLink, Checkpoint, ClientAuth, Dropped, EventKind,
    OAuthDetails, Outcome, Scopes, Severity, Timestamp, TokenDetails, TokenRef,
};
use crate::token::Delegate;

/// The OCSF schema version every event claims in `metadata.version`, and whose published
/// schema the events are validated against (`scripts/lib/install.sh` installs it).
pub const OCSF_VERSION: &str = "1.8.0";

/// `metadata.product.name`.
const PRODUCT: &str = "oauth-audit";

/// `auth_protocol_id` 6 of the Authentication class.
const OAUTH2: u8 = 6;

/// An [`AuditEvent`] seen as an OCSF event: serialise it with serde.
///
/// ```
/// use std::sync::Arc;
/// use oauth_audit::event::{AuditEvent, EventKind, Outcome, ServiceInfo, Timestamp};
/// use oauth_audit::format::{Ocsf, OCSF_VERSION};
///
/// let service = Arc::new(ServiceInfo::new("api"));
/// let mut event = AuditEvent::new(service, Timestamp::now(), EventKind::LoginFailed, Outcome::Failure);
/// event.actor.subject = Some("alice".into());
/// let json = serde_json::to_value(Ocsf(&event)).unwrap();
/// assert_eq!(json["metadata"]["version"], OCSF_VERSION);
/// assert_eq!(json["class_uid"], 3002); // Authentication
/// assert_eq!(json["activity_id"], 1); // Logon
/// assert_eq!(json["type_uid"], 300201);
/// assert_eq!(json["auth_protocol_id"], 6); // OAuth 2.0
/// assert_eq!(json["status_id"], 2); // Failure
/// assert_eq!(json["user"]["name"], "alice");
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Ocsf<'a>(pub &'a AuditEvent);

impl Serialize for Ocsf<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Document::of(self.0).serialize(serializer)
    }
}

/// An OCSF class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    /// 3002.
    Authentication,
    /// 6003.
    ApiActivity,
    /// 6004.
    WebResourceAccess,
    /// 2004.
    DetectionFinding,
    /// 1008.
    EventLog,
}

impl Class {
    fn uid(self) -> u32 {
        match self {
            Class::Authentication => 3002,
            Class::ApiActivity => 6003,
            Class::WebResourceAccess => 6004,
            Class::DetectionFinding => 2004,
            Class::EventLog => 1008,
        }
    }

    fn category_uid(self) -> u8 {
        match self {
            Class::Authentication => 3,
            Class::ApiActivity | Class::WebResourceAccess => 6,
            Class::DetectionFinding => 2,
            Class::EventLog => 1,
        }
    }
}

/// The class and activity of an event: `(class, activity_id, activity_name)`.
fn classify(event: &AuditEvent) -> (Class, u8, &'static str) {
    use EventKind::*;
    match event.kind {
        AccessTokenIssued | TokenRequestFailed
            if event.grant_type.as_deref() == Some("refresh_token") =>
        {
            (Class::Authentication, 5, "Service Ticket Renew")
        }
        AccessTokenIssued | TokenRequestFailed => {
            (Class::Authentication, 4, "Service Ticket Request")
        }
        TokenRevoked | TokenRevocationFailed | LogoutSucceeded | LogoutFailed => {
            (Class::Authentication, 2, "Logoff")
        }
        LoginSucceeded | LoginFailed => (Class::Authentication, 1, "Logon"),
        AuthorizationRequested | AuthorizationGranted | AuthorizationFailed => {
            (Class::Authentication, 99, "Authorize")
        }
        TokenIntrospected | TokenIntrospectionFailed => (Class::ApiActivity, 2, "Read"),
        ResourceAccessed if event.outcome == Outcome::Failure => {
            (Class::WebResourceAccess, 4, "Access Error")
        }
        ResourceAccessed => (Class::WebResourceAccess, 1, "Access Grant"),
        AccessDenied => (Class::WebResourceAccess, 2, "Access Deny"),
        SecurityAlert => (Class::DetectionFinding, 1, "Create"),
        AuditEventsDropped => (Class::EventLog, 99, "Events Dropped"),
        AuditCheckpoint => (Class::EventLog, 99, "Checkpoint"),
    }
}

/// `severity_id`: 1 Informational, 3 Medium, 5 Critical.
fn severity_id(severity: Severity) -> u8 {
    match severity {
        Severity::Info => 1,
        Severity::Warning => 3,
        Severity::Critical => 5,
    }
}

/// `status_id`: 1 Success, 2 Failure, 0 Unknown.
fn status_id(outcome: Outcome) -> u8 {
    match outcome {
        Outcome::Success => 1,
        Outcome::Failure => 2,
        Outcome::Unknown => 0,
    }
}

/// Whether `http_request.http_method` takes `method`: OCSF enumerates the methods of
/// RFC 9110 and `PATCH`, and an event with any other (an extension method such as `PURGE`,
/// or `get`, which is not `GET`) is not valid OCSF.
fn is_ocsf_method(method: &str) -> bool {
    const METHODS: [&str; 9] = [
        "OPTIONS", "GET", "HEAD", "POST", "PUT", "DELETE", "TRACE", "CONNECT", "PATCH",
    ];
    METHODS.contains(&method)
}

fn millis(time: &Timestamp) -> i64 {
    time.unix_micros().div_euclid(1000)
}

fn is_empty_slice<T>(items: &&[T]) -> bool {
    items.is_empty()
}

/// One OCSF event; which attributes are set depends on the class (an attribute its class
/// does not define is never written: the published schema allows no others).
#[derive(Serialize)]
struct Document<'a> {
    activity_id: u8,
    /// Only for activity 99 (Other), which OCSF asks the source to name; the others are
    /// named by their id.
    #[serde(skip_serializing_if = "Option::is_none")]
    activity_name: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    actor: Option<Actor<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    api: Option<Api>,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_protocol: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_protocol_id: Option<u8>,
    category_uid: u8,
    class_uid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    count: Option<u64>,
    /// Milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    duration: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    evidences: Option<[Evidence<'a>; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finding_info: Option<FindingInfo<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http_request: Option<HttpRequest<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http_response: Option<HttpResponse>,
    #[serde(skip_serializing_if = "Option::is_none")]
    is_alert: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    log_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    log_provider: Option<&'static str>,
    metadata: Metadata<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    service: Option<Service<'a>>,
    severity_id: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    src_endpoint: Option<Endpoint<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_detail: Option<&'a str>,
    status_id: u8,
    /// Milliseconds since the Unix epoch.
    time: i64,
    /// The same instant to the microsecond (the `datetime` profile).
    time_dt: &'a Timestamp,
    type_uid: u32,
    #[serde(skip_serializing_if = "Unmapped::is_empty")]
    unmapped: Unmapped<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<User<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    web_resources: Option<[WebResource<'a>; 1]>,
}

impl<'a> Document<'a> {
    fn of(event: &'a AuditEvent) -> Self {
        let (class, activity_id, activity_name) = classify(event);
        let category_uid = class.category_uid();
        let severity_id = severity_id(event.severity);
        let status_id = status_id(event.outcome);
        let http = event.http.as_ref();
        let source = event.source.as_ref();
        let alert = event.alert.as_deref();
        let user = User::of(event);
        let app_uid = event.actor.client_id.as_deref();
        let src_ip = source.and_then(Endpoint::of);
        let method = http.map(|h| h.method.as_ref()).filter(|m| !m.is_empty());
        let http_request = HttpRequest {
            http_method: method.filter(|m| is_ocsf_method(m)),
            uid: event.request_id.as_deref(),
            url: http
                .map(|h| h.path.as_str())
                .filter(|p| !p.is_empty())
                .map(|path| Url { path }),
            user_agent: source.and_then(|s| s.user_agent.as_deref()),
        };
        let http_request =
            (class == Class::WebResourceAccess || !http_request.is_empty()).then_some(http_request);
        let actor = Actor {
            app_uid,
            user: if app_uid.is_some() && event.actor.subject.is_none() {
                None
            } else {
                Some(user)
            },
        };
        let route = http.and_then(|h| h.route.as_deref());

        let mut document = Document {
            activity_id,
            activity_name: (activity_id == 99).then_some(activity_name),
            actor: None,
            api: None,
            auth_protocol: None,
            auth_protocol_id: None,
            category_uid,
            class_uid: class.uid(),
            count: None,
            duration: http.map(|h| h.duration_ms.round() as i64),
            evidences: None,
            finding_info: None,
            http_request,
            http_response: http
                .and_then(|h| h.status)
                .map(|code| HttpResponse { code }),
            is_alert: None,
            log_name: None,
            log_provider: None,
            metadata: Metadata {
                correlation_uid: event.trace_id.as_deref(),
                event_code: event.kind.as_str(),
                product: Product {
                    name: PRODUCT,
                    version: env!("CARGO_PKG_VERSION"),
                },
                profiles: if class == Class::WebResourceAccess {
                    &["datetime", "host"]
                } else {
                    &["datetime"]
                },
                reporter: Reporter {
                    name: &event.service.name,
                    uid: event.service.instance.as_deref(),
                },
                tags: Tags(&event.labels),
                uid: &event.id,
                version: OCSF_VERSION,
            },
            service: None,
            severity_id,
            src_endpoint: src_ip,
            status_code: event.error.as_ref().map(|e| e.code.as_str()),
            status_detail: event.error.as_ref().and_then(|e| e.description.as_deref()),
            status_id,
            time: millis(&event.time),
            time_dt: &event.time,
            type_uid: class.uid() * 100 + u32::from(activity_id),
            unmapped: Unmapped {
                actor: (event.actor.kind.is_some() || !event.actor.delegation.is_empty()).then(
                    || UnmappedActor {
                        delegation: &event.actor.delegation,
                        kind: event.actor.kind,
                    },
                ),
                alert,
                chain: event.chain.as_deref(),
                checkpoint: event.checkpoint.as_deref(),
                client_auth: event.client_auth,
                dropped: event.dropped.as_deref(),
                grant_type: event.grant_type.as_deref(),
                http: http.map(|h| UnmappedHttp {
                    duration_ms: h.duration_ms,
                    method: method.filter(|m| !is_ocsf_method(m)),
                    route: route.filter(|_| class != Class::WebResourceAccess),
                }),
                oauth: event.oauth.as_deref().filter(|o| !o.is_empty()),
                redirect_uri: event.redirect_uri.as_deref(),
                refresh_token: event.refresh_token.as_deref(),
                scopes: &event.scopes,
                source: UnmappedSource {
                    forwarded_for: source.map_or(&[][..], |s| &s.forwarded_for[..]),
                    forwarded_headers: source.map(|s| &s.forwarded_headers),
                    geo: UnmappedGeo::of(source.and_then(|s| s.geo.as_deref())),
                },
                span_id: event.span_id.as_deref(),
                token: event.token.as_deref(),
            },
            user: None,
            web_resources: None,
        };

        match class {
            Class::Authentication => {
                document.auth_protocol = Some("OAUTH 2.0");
                document.auth_protocol_id = Some(OAUTH2);
                document.user = Some(user);
                document.actor = app_uid.map(|app_uid| Actor {
                    app_uid: Some(app_uid),
                    user: None,
                });
                document.service = Some(Service {
                    name: &event.service.name,
                });
            }
            Class::ApiActivity => {
                document.actor = Some(actor);
                document.api = Some(Api {
                    operation: "introspect",
                });
                if document.src_endpoint.is_none() {
                    // Required by the class; the event did not record an address.
                    document.src_endpoint = Some(Endpoint::unknown());
                }
            }
            Class::WebResourceAccess => {
                document.actor = Some(actor);
                document.web_resources = Some([WebResource {
                    name: route
                        .or(http.map(|h| h.path.as_str()).filter(|p| !p.is_empty()))
                        .unwrap_or("unknown"),
                }]);
            }
            Class::DetectionFinding => {
                // Detection Finding's status is the finding's own: a new one.
                document.status_id = 1;
                document.is_alert = Some(true);
                document.count = alert.map(|a| a.count);
                document.finding_info = Some(FindingInfo::of(event, alert));
                // The class has no `http_request` or `http_response` of its own: what
                // the alert knows of the request (a detector copies the user agent) is
                // evidence, as the address is.
                let evidence = Evidence {
                    actor: (!event.actor.is_empty()).then_some(actor),
                    http_request: document.http_request.take(),
                    http_response: document.http_response.take(),
                    src_endpoint: document.src_endpoint.take(),
                };
                document.evidences = (!evidence.is_empty()).then_some([evidence]);
            }
            Class::EventLog => {
                document.log_provider = Some(PRODUCT);
                if let Some(dropped) = &event.dropped {
                    document.log_name = Some(&dropped.sink);
                    document.count = Some(dropped.count);
                    document.status_detail = Some(dropped.reason.as_str());
                }
            }
        }
        document
    }
}

#[derive(Serialize)]
struct Actor<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    app_uid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<User<'a>>,
}

/// `user`, which Authentication requires and which must have a `name` or `uid`.
#[derive(Clone, Copy, Serialize)]
struct User<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    type_id: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    uid: Option<&'a str>,
}

impl<'a> User<'a> {
    fn of(event: &'a AuditEvent) -> Self {
        match (
            &event.actor.subject,
            &event.actor.client_id,
            event.actor.kind,
        ) {
            (Some(subject), ..) => User {
                name: Some(subject),
                type_id: 1,
                uid: None,
            },
            // Client credentials: the client authenticates as itself.
            (None, Some(client_id), _) => User {
                name: None,
                type_id: 4,
                uid: Some(client_id),
            },
            (None, None, Some(ActorKind::Anonymous)) => User {
                name: Some("anonymous"),
                type_id: 0,
                uid: None,
            },
            (None, None, _) => User {
                name: Some("unknown"),
                type_id: 0,
                uid: None,
            },
        }
    }
}

#[derive(Serialize)]
struct Api {
    operation: &'static str,
}

#[derive(Serialize)]
struct Endpoint<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    autonomous_system: Option<AutonomousSystem<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<Location<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'static str>,
    /// 1 (Internal) for an address enrichment found private or loopback.
    #[serde(skip_serializing_if = "Option::is_none")]
    network_scope_id: Option<u8>,
}

impl<'a> Endpoint<'a> {
    /// The source's address, place and network, when any is known.
    fn of(source: &'a crate::event::Source) -> Option<Self> {
        let geo = source.geo.as_ref();
        let location = geo.map(|geo| Location {
            city: geo.city.as_deref(),
            country: geo.country.as_deref(),
            lat: geo.lat,
            long: geo.lon,
            region: geo.region_code.as_deref(),
        });
        let endpoint = Endpoint {
            autonomous_system: source.r#as.as_ref().map(|a| AutonomousSystem {
                name: a.org.as_deref(),
                number: a.number,
            }),
            ip: source.ip,
            location: location.filter(Location::is_valid),
            name: None,
            network_scope_id: geo.and_then(|g| g.name.as_ref()).map(|_| 1),
        };
        let empty = endpoint.ip.is_none()
            && endpoint.location.is_none()
            && endpoint.autonomous_system.is_none();
        (!empty).then_some(endpoint)
    }

    /// The endpoint a class requires when the event recorded no address.
    fn unknown() -> Self {
        Endpoint {
            autonomous_system: None,
            ip: None,
            location: None,
            name: Some("unknown"),
            network_scope_id: None,
        }
    }
}

#[derive(Serialize)]
struct AutonomousSystem<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    number: u32,
}

/// `location`: OCSF's `region` is the ISO 3166-2 code. OCSF wants a city, country or region
/// in it: a place with none (a private address, bare coordinates) goes to `unmapped`.
#[derive(Serialize)]
struct Location<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    city: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    country: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lat: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    long: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<&'a str>,
}

impl Location<'_> {
    fn is_valid(&self) -> bool {
        self.city.is_some() || self.country.is_some() || self.region.is_some()
    }
}

#[derive(Serialize)]
struct Evidence<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    actor: Option<Actor<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http_request: Option<HttpRequest<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http_response: Option<HttpResponse>,
    #[serde(skip_serializing_if = "Option::is_none")]
    src_endpoint: Option<Endpoint<'a>>,
}

impl Evidence<'_> {
    fn is_empty(&self) -> bool {
        self.actor.is_none()
            && self.http_request.is_none()
            && self.http_response.is_none()
            && self.src_endpoint.is_none()
    }
}

#[derive(Serialize)]
struct FindingInfo<'a> {
    analytic: Analytic<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    desc: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_seen_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_seen_time: Option<i64>,
    #[serde(skip_serializing_if = "RelatedEvents::is_empty")]
    related_events: RelatedEvents<'a>,
    title: &'a str,
    uid: &'a Uuid,
}

impl<'a> FindingInfo<'a> {
    fn of(event: &'a AuditEvent, alert: Option<&'a Alert>) -> Self {
        let rule = alert.map_or("unknown", |a| a.rule.as_str());
        FindingInfo {
            analytic: Analytic {
                name: rule,
                type_id: 1,
                uid: rule,
            },
            desc: alert.map(|a| a.key.as_str()),
            first_seen_time: alert.and_then(|a| a.first_seen.as_ref()).map(millis),
            last_seen_time: alert.and_then(|a| a.last_seen.as_ref()).map(millis),
            related_events: RelatedEvents(alert.map_or(&[][..], |a| &a.evidence[..])),
            title: alert.and_then(|a| a.title.as_deref()).unwrap_or(rule),
            uid: &event.id,
        }
    }
}

/// `related_events`: the ids of the events an alert counted, as `related_event` objects.
impl Serialize for RelatedEvents<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for uid in self.0 {
            seq.serialize_element(&RelatedEvent { uid })?;
        }
        seq.end()
    }
}

struct RelatedEvents<'a>(&'a [String]);

impl RelatedEvents<'_> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[derive(Serialize)]
struct RelatedEvent<'a> {
    uid: &'a str,
}

#[derive(Serialize)]
struct Analytic<'a> {
    name: &'a str,
    type_id: u8,
    uid: &'a str,
}

#[derive(Serialize)]
struct HttpRequest<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    http_method: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    uid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<Url<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_agent: Option<&'a str>,
}

impl HttpRequest<'_> {
    fn is_empty(&self) -> bool {
        self.http_method.is_none()
            && self.uid.is_none()
            && self.url.is_none()
            && self.user_agent.is_none()
    }
}

#[derive(Serialize)]
struct Url<'a> {
    path: &'a str,
}

#[derive(Serialize)]
struct HttpResponse {
    code: u16,
}

#[derive(Serialize)]
struct Metadata<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    correlation_uid: Option<&'a str>,
    /// The schema v1 kind.
    event_code: &'static str,
    product: Product,
    profiles: &'static [&'static str],
    reporter: Reporter<'a>,
    #[serde(skip_serializing_if = "Tags::is_empty")]
    tags: Tags<'a>,
    uid: &'a Uuid,
    version: &'static str,
}

#[derive(Serialize)]
struct Product {
    name: &'static str,
    version: &'static str,
}

/// The service that produced the event.
#[derive(Serialize)]
struct Reporter<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    uid: Option<&'a str>,
}

/// `labels` as `metadata.tags`: `[{"name": .., "value": ..}]`.
struct Tags<'a>(&'a BTreeMap<String, String>);

impl Tags<'_> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Tags<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Tag<'a> {
            name: &'a str,
            value: &'a str,
        }
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for (name, value) in self.0 {
            seq.serialize_element(&Tag { name, value })?;
        }
        seq.end()
    }
}

#[derive(Serialize)]
struct Service<'a> {
    name: &'a str,
}

#[derive(Serialize)]
struct WebResource<'a> {
    name: &'a str,
}

/// `unmapped`: what OCSF has no attribute for, by its schema v1 name.
#[derive(Serialize)]
struct Unmapped<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    actor: Option<UnmappedActor<'a>>,
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
    http: Option<UnmappedHttp<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    oauth: Option<&'a OAuthDetails>,
    #[serde(skip_serializing_if = "Option::is_none")]
    redirect_uri: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a TokenRef>,
    #[serde(skip_serializing_if = "Scopes::is_empty")]
    scopes: &'a Scopes,
    #[serde(skip_serializing_if = "UnmappedSource::is_empty")]
    source: UnmappedSource<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    span_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<&'a TokenDetails>,
}

impl Unmapped<'_> {
    fn is_empty(&self) -> bool {
        self.actor.is_none()
            && self.alert.is_none()
            && self.chain.is_none()
            && self.checkpoint.is_none()
            && self.client_auth.is_none()
            && self.dropped.is_none()
            && self.grant_type.is_none()
            && self.http.is_none()
            && self.oauth.is_none()
            && self.redirect_uri.is_none()
            && self.refresh_token.is_none()
            && self.scopes.is_empty()
            && self.source.is_empty()
            && self.span_id.is_none()
            && self.token.is_none()
    }
}

/// The actor's kind and delegation chain (OCSF's `actor` has no chain of actors).
#[derive(Serialize)]
struct UnmappedActor<'a> {
    #[serde(skip_serializing_if = "is_empty_slice")]
    delegation: &'a [Delegate],
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<ActorKind>,
}

/// `duration` is whole milliseconds: the exact figure and the route stay here, and a method
/// that `http_request.http_method` does not take.
#[derive(Serialize)]
struct UnmappedHttp<'a> {
    duration_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    route: Option<&'a str>,
}

#[derive(Serialize)]
struct UnmappedSource<'a> {
    #[serde(skip_serializing_if = "is_empty_slice")]
    forwarded_for: &'a [String],
    #[serde(skip_serializing_if = "no_headers")]
    forwarded_headers: Option<&'a BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "UnmappedGeo::is_empty")]
    geo: UnmappedGeo<'a>,
}

/// What `src_endpoint.location` does not take: the region's name (it takes the code), what
/// a private address is, and coordinates without a named place.
#[derive(Default, Serialize)]
struct UnmappedGeo<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    lat: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lon: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<&'a str>,
}

impl<'a> UnmappedGeo<'a> {
    fn of(geo: Option<&'a crate::event::Geo>) -> Self {
        let Some(geo) = geo else {
            return UnmappedGeo::default();
        };
        let placed = geo.city.is_some() || geo.country.is_some() || geo.region_code.is_some();
        UnmappedGeo {
            lat: geo.lat.filter(|_| !placed),
            lon: geo.lon.filter(|_| !placed),
            name: geo.name.as_deref(),
            region: geo.region.as_deref(),
        }
    }

    fn is_empty(&self) -> bool {
        self.lat.is_none() && self.lon.is_none() && self.name.is_none() && self.region.is_none()
    }
}

fn no_headers(headers: &Option<&BTreeMap<String, String>>) -> bool {
    headers.is_none_or(|h| h.is_empty())
}

impl UnmappedSource<'_> {
    fn is_empty(&self) -> bool {
        self.forwarded_for.is_empty() && no_headers(&self.forwarded_headers) && self.geo.is_empty()
    }
}
