//! Feature `opentelemetry`: a service that traces with `tracing-opentelemetry` gets the
//! trace and span of the request's span in every audit event, so the event joins the
//! service's own trace; a real tracer provider from the OpenTelemetry SDK makes the ids.
#![cfg(feature = "opentelemetry")]

mod support;

use std::sync::OnceLock;

use axum::{routing::get, Router};
use oauth_audit::AuditLayer;
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_sdk::trace::SdkTracerProvider;
use support::{client, events, memory_auditor, serve};
use tower_http::trace::TraceLayer;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::SubscriberExt as _;

/// Installs, once for this test binary, a subscriber that gives every span an
/// OpenTelemetry context.
fn tracing_with_opentelemetry() {
    static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();
    PROVIDER.get_or_init(|| {
        let provider = SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("oauth-audit-test")));
        tracing::subscriber::set_global_default(subscriber).unwrap();
        provider
    });
}

/// The handler answers with the trace and span ids it runs in, as the service sees them.
async fn ids() -> String {
    let context = tracing::Span::current().context();
    let span = context.span();
    let ids = span.span_context();
    format!("{} {}", ids.trace_id(), ids.span_id())
}

#[tokio::test]
async fn the_event_joins_the_trace_of_the_span_the_request_ran_in() {
    tracing_with_opentelemetry();
    let (auditor, memory) = memory_auditor();
    let app = Router::new()
        .route("/api/orders", get(ids))
        .layer(AuditLayer::new(auditor.clone()))
        .layer(TraceLayer::new_for_http());
    let addr = serve(app).await;

    let mut seen = Vec::new();
    for traceparent in [
        None,
        Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    ] {
        let mut request = client().get(format!("http://{addr}/api/orders"));
        if let Some(traceparent) = traceparent {
            request = request.header("traceparent", traceparent);
        }
        let body = request.send().await.unwrap().text().await.unwrap();
        let (trace, span) = body.split_once(' ').unwrap();
        assert_eq!(trace.len(), 32, "{body}");
        assert_eq!(span.len(), 16, "{body}");
        assert_ne!(trace, "0".repeat(32), "the handler ran in a traced span");
        seen.push((trace.to_owned(), span.to_owned()));
    }
    let events = events(&memory, 2).await;
    for (event, (trace, span)) in events.iter().zip(&seen) {
        assert_eq!(event["trace_id"], trace.as_str(), "{event}");
        assert_eq!(event["span_id"], span.as_str(), "{event}");
    }
    // Two requests, two traces: the ids are the requests' own, not a constant.
    assert_ne!(seen[0].0, seen[1].0);
    // The service did not continue the caller's trace (no propagator is installed), so
    // its own trace is the one the event joins, not the header's.
    assert_ne!(events[1]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
}

#[tokio::test]
async fn outside_any_span_the_traceparent_header_still_gives_the_trace() {
    tracing_with_opentelemetry();
    let (auditor, memory) = memory_auditor();
    let app = Router::new()
        .route("/api/orders", get(|| async { "ok" }))
        .layer(AuditLayer::new(auditor.clone()));
    let addr = serve(app).await;
    client()
        .get(format!("http://{addr}/api/orders"))
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .send()
        .await
        .unwrap();
    let event = &events(&memory, 1).await[0];
    assert_eq!(event["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert!(event.get("span_id").is_none(), "{event}");
}
