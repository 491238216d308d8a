//! The OpenTelemetry context of the current `tracing` span (feature `opentelemetry`): when
//! the service traces with `tracing-opentelemetry`, the audit event joins its trace.

use opentelemetry::trace::TraceContextExt as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The trace and span ids (lowercase hex, 32 and 16 digits) of the current span's
/// OpenTelemetry context, when it has a valid one.
pub(crate) fn current_span() -> Option<(String, String)> {
    let context = tracing::Span::current().context();
    let span = context.span();
    let ids = span.span_context();
    ids.is_valid()
        .then(|| (ids.trace_id().to_string(), ids.span_id().to_string()))
}
