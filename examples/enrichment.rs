//! Enrichment and redaction hooks: a `Processor` sees every event once, off the request path,
//! before any writer (and before the hash chain, so what it changes is what is sealed).
//!
//! ```text
//! cargo run --example enrichment
//! ```
//!
//! Two hooks:
//! - a closure labels every event with the tenant its OAuth client belongs to;
//! - a type pseudonymises `actor.subject` (an email here) with a keyed hash, so that the
//!   trail can still tell one user from another, and be joined with the key holder's
//!   directory, without carrying the address itself.

use std::collections::HashMap;

use hmac::{Hmac, Mac};
use oauth_audit::event::{AuditEvent, EventKind, Outcome, Timestamp};
use oauth_audit::process::Processor;
use oauth_audit::writer::{Auditor, MemoryWriter};
use sha2::Sha256;

/// Replaces `actor.subject` by `pseudo:` and the first 16 bytes of HMAC-SHA256(key, subject),
/// in hex.
struct Pseudonymise {
    key: Vec<u8>,
}

impl Processor for Pseudonymise {
    fn process(&mut self, event: &mut AuditEvent, _emitted: &mut Vec<AuditEvent>) {
        if let Some(subject) = event.actor.subject.take() {
            let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
            mac.update(subject.as_bytes());
            let digest = mac.finalize().into_bytes();
            event.actor.subject = Some(format!("pseudo:{}", hex::encode(&digest[..16])));
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tenants: HashMap<&str, &str> = [
        ("web", "acme"),
        ("mobile", "acme"),
        ("partner-app", "globex"),
    ]
    .into_iter()
    .collect();
    let memory = MemoryWriter::new();
    let auditor = Auditor::builder()
        // Enrichment: a closure is a processor.
        .processor(move |event: &mut AuditEvent| {
            let tenant = event
                .actor
                .client_id
                .as_deref()
                .and_then(|c| tenants.get(c));
            event
                .labels
                .insert("tenant".into(), tenant.copied().unwrap_or("unknown").into());
        })
        // Redaction: a type that keeps its key.
        .processor(Pseudonymise {
            key: b"a key from your secret store".to_vec(),
        })
        .writer(memory.clone())
        .build()?;

    for (client, subject) in [
        ("web", "alice@example.com"),
        ("partner-app", "bob@example.org"),
        ("web", "alice@example.com"),
    ] {
        let mut event = AuditEvent::new(
            auditor.service().clone(),
            Timestamp::now(),
            EventKind::AccessTokenIssued,
            Outcome::Success,
        );
        event.actor.client_id = Some(client.into());
        event.actor.subject = Some(subject.into());
        auditor.emit(event);
    }
    auditor.shutdown().await;
    print!("{}", memory.json_lines());
    Ok(())
}
