//! A local HTTP collector that speaks Elasticsearch `_bulk`, Splunk HEC or JSON lines, checks
//! every request against the documented shape of its format, and answers like the real
//! service (bulk item statuses, 409 on a known `_id`, 429, 503, auth failures).
//!
//! Plain HTTP or TLS (a throwaway CA made with rcgen, optionally requiring a client
//! certificate), on 127.0.0.1:0; the server stops when the `Collector` is dropped.

use std::collections::{HashMap, VecDeque};
use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::http::{HeaderMap, Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::rustls;

/// The format a collector speaks, with the fields it expects.
#[derive(Clone, Debug)]
pub enum Shape {
    /// `POST /_bulk`, NDJSON `create` action + document pairs.
    Bulk { index: String },
    /// `POST /services/collector/event`, concatenated HEC event objects.
    Hec {
        source: String,
        sourcetype: String,
        index: Option<String>,
    },
    /// `POST /ingest`, one event per line.
    Lines,
}

impl Shape {
    pub fn path(&self) -> &'static str {
        match self {
            Shape::Bulk { .. } => "/_bulk",
            Shape::Hec { .. } => "/services/collector/event",
            Shape::Lines => "/ingest",
        }
    }

    fn content_type(&self) -> &'static str {
        match self {
            Shape::Bulk { .. } | Shape::Lines => "application/x-ndjson",
            Shape::Hec { .. } => "application/json",
        }
    }
}

/// What the collector expects of every request.
#[derive(Clone, Debug)]
pub struct Expect {
    pub shape: Shape,
    /// The exact `Authorization` value; `None`: the header must be absent.
    pub authorization: Option<String>,
    /// Whether bodies must be gzip-compressed (`Content-Encoding: gzip`).
    pub gzip: bool,
}

/// How the collector answers the next request (after checking its shape and credentials).
#[derive(Clone, Debug)]
pub enum Reply {
    /// Answered as the real service would, as when nothing is scripted (to script a later
    /// request only).
    Accept,
    /// The whole request fails with this status (and `Retry-After` seconds, if any), as the
    /// real service answers it; nothing is stored.
    Status(u16, Option<u64>),
    /// The events are stored, then the request is answered with this status anyway (a
    /// timeout or a proxy failure after the collector committed).
    StoreThenStatus(u16),
    /// `_bulk` only: answered 200 with `errors: true`, the first item failing with this
    /// status and error type; the other items are indexed.
    FirstItemFails(u16, &'static str),
    /// A proxy (or a single sign-on gateway) in front of the collector answers 200 with this
    /// content type and body; the request never reaches the collector: nothing is stored.
    ProxyAnswers200(&'static str, &'static str),
    /// The events are stored as when nothing is scripted, then the answer waits this long:
    /// a client whose timeout is shorter gives up on a request the collector committed.
    StoreThenStall(Duration),
}

/// One request the collector saw.
#[derive(Clone, Debug)]
pub struct Seen {
    pub status: u16,
    pub events: usize,
    /// The body length before compression.
    pub body_bytes: usize,
    pub idempotency_key: Option<String>,
}

#[derive(Default)]
struct Store {
    script: VecDeque<Reply>,
    /// Every event stored, in arrival order: for `_bulk` only created documents, for HEC
    /// and JSON lines every event received (they do not deduplicate).
    events: Vec<Value>,
    /// `_bulk` documents by `_id`.
    documents: HashMap<String, Value>,
    requests: Vec<Seen>,
    violations: Vec<String>,
    /// Index templates put (`PUT /_index_template/<name>`), by name, in order.
    templates: Vec<(String, Value)>,
    /// Statuses to answer the next template requests with (then 200).
    template_script: VecDeque<u16>,
    /// Every request, as `METHOD path`, in arrival order.
    log: Vec<String>,
}

struct State {
    expect: Expect,
    store: Mutex<Store>,
}

pub struct Collector {
    pub addr: SocketAddr,
    scheme: &'static str,
    state: Arc<State>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Collector {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every connection.
        self.server.abort();
    }
}

impl Collector {
    /// A plain-HTTP collector.
    pub async fn start(expect: Expect) -> Collector {
        Collector::spawn(expect, None).await
    }

    /// A collector behind TLS with a certificate from `pki`; with `client_auth`, only
    /// clients presenting a certificate from the same CA get through the handshake.
    pub async fn start_tls(expect: Expect, pki: &Pki, client_auth: bool) -> Collector {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = if client_auth {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(pki.ca_der.clone()).unwrap();
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .unwrap();
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let config = builder
            .with_single_cert(vec![pki.server_der.clone()], pki.server_key().into())
            .unwrap();
        Collector::spawn(
            expect,
            Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))),
        )
        .await
    }

    async fn spawn(expect: Expect, tls: Option<tokio_rustls::TlsAcceptor>) -> Collector {
        let state = Arc::new(State {
            expect,
            store: Mutex::default(),
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let server = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let app = app.clone();
                let tls = tls.clone();
                connections.spawn(async move {
                    let service = TowerToHyperService::new(app);
                    let builder =
                        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    match tls {
                        Some(acceptor) => {
                            // A refused handshake (no client certificate, unknown CA) just
                            // ends the connection, as a real server does.
                            if let Ok(stream) = acceptor.accept(stream).await {
                                let _ = builder
                                    .serve_connection(TokioIo::new(stream), service)
                                    .await;
                            }
                        }
                        None => {
                            let _ = builder
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                    }
                });
                while connections.try_join_next().is_some() {}
            }
        });
        Collector {
            addr,
            scheme,
            state,
            server,
        }
    }

    /// The full endpoint URL for the collector's format.
    pub fn url(&self) -> String {
        format!(
            "{}://{}{}",
            self.scheme,
            self.addr,
            self.state.expect.shape.path()
        )
    }

    /// Queues answers for the next requests.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.store.lock().unwrap().script.extend(replies);
    }

    /// Queues statuses for the next `PUT /_index_template/..` requests.
    pub fn script_templates(&self, statuses: impl IntoIterator<Item = u16>) {
        self.state
            .store
            .lock()
            .unwrap()
            .template_script
            .extend(statuses);
    }

    /// The index templates put so far (name, body), accepted or not, in order.
    pub fn templates(&self) -> Vec<(String, Value)> {
        self.state.store.lock().unwrap().templates.clone()
    }

    /// Every request so far, as `METHOD path`.
    pub fn log(&self) -> Vec<String> {
        self.state.store.lock().unwrap().log.clone()
    }

    /// Events stored so far (see `Store::events`).
    pub fn events(&self) -> Vec<Value> {
        self.state.store.lock().unwrap().events.clone()
    }

    /// The ids of the events stored so far, in arrival order.
    pub fn ids(&self) -> Vec<String> {
        self.events()
            .iter()
            .map(|event| check_event(event).unwrap().to_string())
            .collect()
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.state.store.lock().unwrap().requests.clone()
    }

    /// Requests that did not have the documented shape.
    pub fn violations(&self) -> Vec<String> {
        self.state.store.lock().unwrap().violations.clone()
    }

    /// Waits (bounded) until at least `n` events are stored, and returns them.
    pub async fn wait_for(&self, n: usize) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let events = self.events();
            if events.len() >= n {
                return events;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "expected {n} events at the collector, got {}; requests {:?}; violations {:?}",
                events.len(),
                self.requests(),
                self.violations()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn handle(
    axum::extract::State(state): axum::extract::State<Arc<State>>,
    request: Request<Body>,
) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let raw = to_bytes(body, usize::MAX).await.unwrap();
    let response = answer(&state, &parts, &raw);
    if let Some(Stall(stall)) = response.extensions().get::<Stall>().copied() {
        tokio::time::sleep(stall).await;
    }
    response
}

/// How long [`handle`] holds an answer back ([`Reply::StoreThenStall`]).
#[derive(Clone, Copy)]
struct Stall(Duration);

/// Checks, stores and answers a request as the real service would, or as scripted.
fn answer(state: &State, parts: &axum::http::request::Parts, raw: &[u8]) -> Response<Body> {
    let expect = &state.expect;
    state
        .store
        .lock()
        .unwrap()
        .log
        .push(format!("{} {}", parts.method, parts.uri.path()));
    if let Some(name) = parts.uri.path().strip_prefix("/_index_template/") {
        return put_template(state, name, &parts.method, &parts.headers, raw);
    }

    let checked = check_request(expect, &parts.method, parts.uri.path(), &parts.headers, raw);
    let (body, events) = match checked {
        Ok(checked) => checked,
        Err(violation) => {
            let mut store = state.store.lock().unwrap();
            store.violations.push(violation.clone());
            store.requests.push(Seen {
                status: 400,
                events: 0,
                body_bytes: raw.len(),
                idempotency_key: None,
            });
            return reply(400, None, json!({ "violation": violation }));
        }
    };
    let idempotency_key = parts
        .headers
        .get("idempotency-key")
        .map(|v| v.to_str().unwrap().to_string());
    let mut store = state.store.lock().unwrap();
    let mut seen = Seen {
        status: 200,
        events: events.len(),
        body_bytes: body.len(),
        idempotency_key,
    };

    let presented = parts
        .headers
        .get("authorization")
        .map(|v| v.to_str().unwrap_or("").to_string());
    if presented != expect.authorization {
        let (status, answer) = auth_failure(&expect.shape, presented.is_none());
        seen.status = status;
        store.requests.push(seen);
        return reply(status, None, answer);
    }

    let scripted = store.script.pop_front();
    if let Some(Reply::ProxyAnswers200(content_type, body)) = scripted {
        store.requests.push(seen);
        return Response::builder()
            .status(StatusCode::OK)
            .header("content-type", content_type)
            .body(Body::from(body))
            .unwrap();
    }
    if let Some(Reply::Status(status, retry_after)) = scripted {
        seen.status = status;
        store.requests.push(seen);
        return reply(status, retry_after, failure(&expect.shape, status));
    }
    let fail_after_storing = match scripted {
        Some(Reply::StoreThenStatus(status)) => Some(status),
        _ => None,
    };
    let first_fails = match scripted {
        Some(Reply::FirstItemFails(status, kind)) => Some((status, kind)),
        _ => None,
    };
    let stall = match scripted {
        Some(Reply::StoreThenStall(stall)) => Some(stall),
        _ => None,
    };

    let answer = match &expect.shape {
        Shape::Bulk { index } => {
            let mut items = Vec::new();
            let mut errors = false;
            for (n, event) in events.into_iter().enumerate() {
                let id = check_event(&event).unwrap().to_string();
                let item = match first_fails {
                    Some((status, kind)) if n == 0 => {
                        errors = true;
                        json!({"create": {"_index": index, "_id": id, "status": status,
                            "error": {"type": kind, "reason": format!("scripted {kind}")}}})
                    }
                    _ if store.documents.contains_key(&id) => {
                        errors = true;
                        json!({"create": {"_index": index, "_id": id, "status": 409,
                            "error": {"type": "version_conflict_engine_exception",
                                "reason": format!("[{id}]: version conflict, document already exists (current version [1])")}}})
                    }
                    _ => {
                        store.documents.insert(id.clone(), event.clone());
                        store.events.push(event);
                        json!({"create": {"_index": index, "_id": id, "_version": 1,
                            "result": "created", "status": 201,
                            "_shards": {"total": 1, "successful": 1, "failed": 0}}})
                    }
                };
                items.push(item);
            }
            json!({"took": 3, "errors": errors, "items": items})
        }
        Shape::Hec { .. } => {
            store.events.extend(events);
            json!({"text": "Success", "code": 0})
        }
        Shape::Lines => {
            store.events.extend(events);
            json!({})
        }
    };
    if let Some(status) = fail_after_storing {
        seen.status = status;
        store.requests.push(seen);
        return reply(status, None, failure(&expect.shape, status));
    }
    store.requests.push(seen);
    let mut response = reply(200, None, answer);
    if let Some(stall) = stall {
        response.extensions_mut().insert(Stall(stall));
    }
    response
}

/// `PUT /_index_template/<name>` on a `_bulk` collector: checked for the shape of a
/// composable data stream template, recorded, and answered as Elasticsearch does.
fn put_template(
    state: &State,
    name: &str,
    method: &Method,
    headers: &HeaderMap,
    raw: &[u8],
) -> Response<Body> {
    let mut store = state.store.lock().unwrap();
    let violation = |store: &mut Store, violation: String| {
        store.violations.push(violation.clone());
        reply(400, None, json!({ "violation": violation }))
    };
    if !matches!(state.expect.shape, Shape::Bulk { .. }) {
        return violation(
            &mut store,
            format!("a template for a {:?}", state.expect.shape),
        );
    }
    if method != Method::PUT {
        return violation(&mut store, format!("template request with {method}"));
    }
    if headers.get("content-type").map(|v| v.as_bytes()) != Some(&b"application/json"[..]) {
        return violation(
            &mut store,
            "template without content-type application/json".into(),
        );
    }
    let presented = headers
        .get("authorization")
        .map(|v| v.to_str().unwrap_or("").to_string());
    if presented != state.expect.authorization {
        return reply(
            401,
            None,
            auth_failure(&state.expect.shape, presented.is_none()).1,
        );
    }
    // Elasticsearch decodes a body by its Content-Encoding, as it does for `_bulk`.
    let decoded = match headers.get("content-encoding").map(|v| v.as_bytes()) {
        None => raw.to_vec(),
        Some(b"gzip") => {
            let mut decoded = Vec::new();
            if let Err(err) = flate2::read::GzDecoder::new(raw).read_to_end(&mut decoded) {
                return violation(
                    &mut store,
                    format!("template with content-encoding gzip, but not gzip: {err}"),
                );
            }
            decoded
        }
        Some(other) => {
            return violation(
                &mut store,
                format!(
                    "template with content-encoding {:?}",
                    String::from_utf8_lossy(other)
                ),
            )
        }
    };
    let body: Value = match serde_json::from_slice(&decoded) {
        Ok(body) => body,
        Err(err) => return violation(&mut store, format!("template is not JSON: {err}")),
    };
    let shape_ok = body["index_patterns"]
        .as_array()
        .is_some_and(|p| !p.is_empty())
        && body["data_stream"].is_object()
        && body["priority"].is_u64()
        && body["template"]["mappings"]["properties"].is_object();
    if !shape_ok {
        return violation(
            &mut store,
            format!("not a composable data stream template: {body}"),
        );
    }
    store.templates.push((name.to_owned(), body));
    match store.template_script.pop_front() {
        Some(403) => reply(
            403,
            None,
            json!({"error": {"type": "security_exception",
                "reason": format!("action [indices:admin/index_template/put] is unauthorized for user [audit]")},
                "status": 403}),
        ),
        Some(status) => reply(status, None, failure(&state.expect.shape, status)),
        None => reply(200, None, json!({"acknowledged": true})),
    }
}

fn reply(status: u16, retry_after: Option<u64>, body: Value) -> Response<Body> {
    let mut response = Response::builder()
        .status(StatusCode::from_u16(status).unwrap())
        .header("content-type", "application/json");
    if let Some(seconds) = retry_after {
        response = response.header("retry-after", seconds.to_string());
    }
    response.body(Body::from(body.to_string())).unwrap()
}

/// What the real services answer to missing or wrong credentials.
fn auth_failure(shape: &Shape, missing: bool) -> (u16, Value) {
    match shape {
        Shape::Bulk { .. } => (
            401,
            json!({"error": {"type": "security_exception",
                "reason": "unable to authenticate user [audit] for REST request [/_bulk]"}, "status": 401}),
        ),
        Shape::Hec { .. } if missing => (401, json!({"text": "Token is required", "code": 2})),
        Shape::Hec { .. } => (403, json!({"text": "Invalid token", "code": 4})),
        Shape::Lines => (401, json!({"message": "unauthorized"})),
    }
}

/// What the real services answer with a request-level failure status.
fn failure(shape: &Shape, status: u16) -> Value {
    match (shape, status) {
        (Shape::Bulk { .. }, 429) => json!({"error": {"type": "es_rejected_execution_exception",
            "reason": "rejected execution of coordinating operation"}, "status": 429}),
        (Shape::Bulk { .. }, 503) => json!({"error": {"type": "cluster_block_exception",
            "reason": "blocked by: [SERVICE_UNAVAILABLE/1/state not recovered / initialized];"}, "status": 503}),
        (Shape::Bulk { .. }, _) => json!({"error": {"type": "illegal_argument_exception",
            "reason": "scripted failure"}, "status": status}),
        (Shape::Hec { .. }, 503) => json!({"text": "Server is busy", "code": 9}),
        (Shape::Hec { .. }, 400) => {
            json!({"text": "Invalid data format", "code": 6, "invalid-event-number": 0})
        }
        (Shape::Hec { .. }, _) => json!({"text": "Internal server error", "code": 8}),
        (Shape::Lines, _) => json!({"message": format!("scripted {status}")}),
    }
}

/// Checks method, path, headers and body against the format's documented shape; returns
/// the decoded body and the events in it.
fn check_request(
    expect: &Expect,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    raw: &[u8],
) -> Result<(Vec<u8>, Vec<Value>), String> {
    if method != Method::POST {
        return Err(format!("method {method}, expected POST"));
    }
    if path != expect.shape.path() {
        return Err(format!("path {path}, expected {}", expect.shape.path()));
    }
    let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap_or("<binary>"));
    if header("content-type") != Some(expect.shape.content_type()) {
        return Err(format!(
            "content-type {:?}, expected {}",
            header("content-type"),
            expect.shape.content_type()
        ));
    }
    let body = match (expect.gzip, header("content-encoding")) {
        (true, Some("gzip")) => {
            let mut decoded = Vec::new();
            flate2::read::GzDecoder::new(raw)
                .read_to_end(&mut decoded)
                .map_err(|err| format!("content-encoding gzip, but the body is not gzip: {err}"))?;
            decoded
        }
        (false, None) => raw.to_vec(),
        (_, encoding) => {
            return Err(format!(
                "content-encoding {encoding:?}, expected gzip: {}",
                expect.gzip
            ))
        }
    };
    let text = std::str::from_utf8(&body).map_err(|_| "body is not UTF-8".to_string())?;
    let events = match &expect.shape {
        Shape::Bulk { index } => check_bulk(text, index)?,
        Shape::Hec {
            source,
            sourcetype,
            index,
        } => check_hec(text, source, sourcetype, index.as_deref())?,
        Shape::Lines => check_lines(text, header("idempotency-key"))?,
    };
    if events.is_empty() {
        return Err("a request without events".into());
    }
    Ok((body, events))
}

/// The event id of a schema v1 event, an ECS document or an OCSF event.
fn check_event(event: &Value) -> Result<&str, String> {
    let id = if event["schema"] == "oauth-audit/1" {
        &event["id"]
    } else if event["ecs"]["version"].is_string() {
        &event["event"]["id"]
    } else if event["class_uid"].is_u64() && event["metadata"]["version"].is_string() {
        &event["metadata"]["uid"]
    } else {
        return Err(format!("neither schema v1, ECS nor OCSF: {event}"));
    };
    id.as_str()
        .ok_or_else(|| format!("event without id: {event}"))
}

fn check_bulk(text: &str, index: &str) -> Result<Vec<Value>, String> {
    if !text.ends_with('\n') {
        return Err("bulk body does not end with a newline".into());
    }
    let lines: Vec<&str> = text.split('\n').collect();
    let lines = &lines[..lines.len() - 1];
    if !lines.len().is_multiple_of(2) {
        return Err(format!(
            "bulk body has {} lines, not action/document pairs",
            lines.len()
        ));
    }
    let mut events = Vec::new();
    for pair in lines.chunks(2) {
        let action: Value = serde_json::from_str(pair[0])
            .map_err(|err| format!("action line is not JSON ({err}): {}", pair[0]))?;
        let object = action.as_object().ok_or("action line is not an object")?;
        if object.len() != 1 || !object.contains_key("create") {
            return Err(format!("action is not a single create: {action}"));
        }
        let create = object["create"]
            .as_object()
            .ok_or("create is not an object")?;
        if create.len() != 2 || create.get("_index") != Some(&json!(index)) {
            return Err(format!(
                "create must name _index {index:?} and _id only: {action}"
            ));
        }
        let id = create
            .get("_id")
            .and_then(Value::as_str)
            .ok_or("create without a string _id")?;
        let document: Value = serde_json::from_str(pair[1])
            .map_err(|err| format!("document line is not JSON ({err}): {}", pair[1]))?;
        // A data stream takes no document without an `@timestamp`.
        let timestamp = document["@timestamp"]
            .as_str()
            .ok_or_else(|| format!("document without @timestamp: {document}"))?;
        let time = if document["ecs"].is_object() {
            timestamp
        } else if document["class_uid"].is_u64() {
            document["time_dt"].as_str().unwrap_or_default()
        } else {
            document["time"].as_str().unwrap_or_default()
        };
        if timestamp != time {
            return Err(format!(
                "@timestamp {timestamp} is not the event time {time}"
            ));
        }
        if check_event(&document)? != id {
            return Err(format!("_id {id} is not the event id: {document}"));
        }
        events.push(document);
    }
    Ok(events)
}

fn check_hec(
    text: &str,
    source: &str,
    sourcetype: &str,
    index: Option<&str>,
) -> Result<Vec<Value>, String> {
    let mut events = Vec::new();
    for object in serde_json::Deserializer::from_str(text).into_iter::<Value>() {
        let object = object.map_err(|err| format!("HEC body is not concatenated JSON: {err}"))?;
        let fields = object.as_object().ok_or("HEC event is not an object")?;
        for key in fields.keys() {
            if ![
                "time",
                "host",
                "source",
                "sourcetype",
                "index",
                "event",
                "fields",
            ]
            .contains(&key.as_str())
            {
                return Err(format!("unknown HEC field {key:?}"));
            }
        }
        let event = &object["event"];
        check_event(event)?;
        let time = object["time"]
            .as_f64()
            .ok_or_else(|| format!("HEC time is not a number: {object}"))?;
        let event_time = chrono::DateTime::parse_from_rfc3339(event["time"].as_str().unwrap())
            .unwrap()
            .timestamp_micros();
        if ((time * 1e6).round() as i64 - event_time).abs() > 1 {
            return Err(format!(
                "HEC time {time} is not the event time {}",
                event["time"]
            ));
        }
        if object["source"] != source || object["sourcetype"] != sourcetype {
            return Err(format!("HEC source/sourcetype: {object}"));
        }
        match (index, object.get("index")) {
            (None, None) => {}
            (Some(index), Some(given)) if given == index => {}
            (_, given) => return Err(format!("HEC index {given:?}, expected {index:?}")),
        }
        if let Some(host) = object.get("host") {
            if host != &event["service"]["instance"] {
                return Err(format!("HEC host {host} is not service.instance"));
            }
        }
        events.push(event.clone());
    }
    Ok(events)
}

fn check_lines(text: &str, idempotency_key: Option<&str>) -> Result<Vec<Value>, String> {
    let key = idempotency_key.ok_or("JSON lines request without Idempotency-Key")?;
    if !(key.len() > 2 && key.starts_with('"') && key.ends_with('"')) {
        return Err(format!("Idempotency-Key {key} is not a quoted string"));
    }
    if !text.ends_with('\n') {
        return Err("JSON lines body does not end with a newline".into());
    }
    text.lines()
        .map(|line| {
            let event: Value = serde_json::from_str(line)
                .map_err(|err| format!("line is not JSON ({err}): {line}"))?;
            check_event(&event)?;
            Ok(event)
        })
        .collect()
}

/// A throwaway CA with a server certificate for 127.0.0.1 and a client identity.
pub struct Pki {
    pub ca_pem: String,
    ca_der: rustls::pki_types::CertificateDer<'static>,
    server_der: rustls::pki_types::CertificateDer<'static>,
    server_key_der: Vec<u8>,
    /// A client certificate from the CA and its key, in one PEM.
    pub client_identity_pem: String,
}

impl Pki {
    pub fn generate() -> Pki {
        use rcgen::{
            BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
            IsCa, KeyPair, KeyUsagePurpose,
        };
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "oauth-audit test CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();

        let server_key = KeyPair::generate().unwrap();
        let mut server_params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server = server_params.signed_by(&server_key, &ca).unwrap();

        let client_key = KeyPair::generate().unwrap();
        let mut client_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        client_params
            .distinguished_name
            .push(DnType::CommonName, "oauth-audit");
        client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client = client_params.signed_by(&client_key, &ca).unwrap();

        Pki {
            ca_pem: ca.pem(),
            ca_der: ca.der().clone(),
            server_der: server.der().clone(),
            server_key_der: server_key.serialize_der(),
            client_identity_pem: format!("{}{}", client.pem(), client_key.serialize_pem()),
        }
    }

    fn server_key(&self) -> rustls::pki_types::PrivatePkcs8KeyDer<'static> {
        rustls::pki_types::PrivatePkcs8KeyDer::from(self.server_key_der.clone())
    }
}
