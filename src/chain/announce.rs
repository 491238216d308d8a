//! Signed drop announcements: an `AuditEventsDropped` event that lists the sequence numbers
//! a sink lost carries a signature, so that nobody can forge one to cover deleted events.
//!
//! `dropped.signature` is `<key name> <base64(key id || Ed25519 signature)>` over the RFC 8785
//! form of the event without `dropped.signature`.

use super::key::SignatureLine;
use super::{NoteError, SigningKey, VerifyingKey};
use crate::event::{canonical_json, AuditEvent};

/// Signs an `AuditEventsDropped` event in place (does nothing to other events).
pub fn sign_announcement(event: &mut AuditEvent, key: &SigningKey) {
    let Some(dropped) = &mut event.dropped else {
        return;
    };
    dropped.signature = None;
    let Ok(message) = canonical_json(&*event) else {
        return;
    };
    let signature = format!("{} {}", key.name(), key.sign(&message));
    if let Some(dropped) = &mut event.dropped {
        dropped.signature = Some(signature);
    }
}

/// Checks the signature of an `AuditEventsDropped` event read back as JSON: `Ok` when one
/// of `keys` signed it as it is.
pub fn check_announcement(
    event: &serde_json::Value,
    keys: &[VerifyingKey],
) -> Result<(), NoteError> {
    let mut unsigned = event.clone();
    let signature = unsigned
        .get_mut("dropped")
        .and_then(serde_json::Value::as_object_mut)
        .and_then(|dropped| dropped.remove("signature"))
        .ok_or(NoteError::Malformed("no dropped.signature"))?;
    let signature = signature
        .as_str()
        .ok_or(NoteError::Malformed("dropped.signature is not a string"))?;
    let signature = SignatureLine::parse(signature).map_err(NoteError::Malformed)?;
    let key = signature
        .key(keys)
        .ok_or_else(|| NoteError::UnknownKey(signature.signer()))?;
    let message = canonical_json(&unsigned)
        .map_err(|_| NoteError::Malformed("the event cannot be canonicalised"))?;
    if signature.verifies(key, &message) {
        Ok(())
    } else {
        Err(NoteError::BadSignature(key.encode()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::event::{DropReason, SeqRange, ServiceInfo};

    #[test]
    fn announcements_verify_only_as_signed() {
        let key = SigningKey::generate("orders-api").unwrap();
        let service = Arc::new(ServiceInfo {
            name: "orders".into(),
            instance: None,
        });
        let mut event = AuditEvent::dropped(service, 3, DropReason::QueueFull, "file");
        event.dropped.as_mut().unwrap().ranges = vec![SeqRange {
            stream: "s".into(),
            first: 10,
            last: 12,
        }];
        sign_announcement(&mut event, &key);
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(check_announcement(&json, &[key.verifying_key()]), Ok(()));

        let mut widened = json.clone();
        widened["dropped"]["ranges"][0]["last"] = 20.into();
        assert!(matches!(
            check_announcement(&widened, &[key.verifying_key()]),
            Err(NoteError::BadSignature(_))
        ));
        let other = SigningKey::generate("orders-api").unwrap();
        assert!(matches!(
            check_announcement(&json, &[other.verifying_key()]),
            Err(NoteError::UnknownKey(_))
        ));
        let mut unsigned = json;
        unsigned["dropped"]
            .as_object_mut()
            .unwrap()
            .remove("signature");
        assert!(check_announcement(&unsigned, &[key.verifying_key()]).is_err());
    }
}
