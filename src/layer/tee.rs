//! Copies at most N bytes of a body as it streams past, without holding it up.

use std::sync::{Arc, OnceLock};

use bytes::{Bytes, BytesMut};

/// What a tee saw of a body.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct Captured {
    /// The first bytes of the body (all of it when `complete` and not `truncated`).
    pub(crate) bytes: Bytes,
    /// The body reached its end.
    pub(crate) complete: bool,
    /// The body was longer than the limit; `bytes` holds only its beginning.
    pub(crate) truncated: bool,
}

impl Captured {
    /// The whole body, when it was seen whole.
    pub(crate) fn whole(&self) -> Option<&[u8]> {
        (self.complete && !self.truncated).then_some(&self.bytes[..])
    }
}

// Bodies of OAuth endpoints hold secrets: Debug shows their size, never their bytes.
impl std::fmt::Debug for Captured {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Captured")
            .field("len", &self.bytes.len())
            .field("complete", &self.complete)
            .field("truncated", &self.truncated)
            .finish()
    }
}

/// Where a request body's tee leaves what it saw, for the event built at response end.
pub(crate) type CaptureSlot = Arc<OnceLock<Captured>>;

/// Accumulates up to `limit` bytes.
pub(crate) struct Tee {
    buf: BytesMut,
    limit: usize,
    truncated: bool,
    slot: Option<CaptureSlot>,
}

impl std::fmt::Debug for Tee {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tee")
            .field("len", &self.buf.len())
            .field("limit", &self.limit)
            .field("truncated", &self.truncated)
            .finish()
    }
}

impl Tee {
    pub(crate) fn new(limit: usize) -> Self {
        Tee {
            buf: BytesMut::new(),
            limit,
            truncated: false,
            slot: None,
        }
    }

    /// A tee that publishes into `slot` when the body ends or is dropped.
    pub(crate) fn publishing(limit: usize, slot: CaptureSlot) -> Self {
        Tee {
            buf: BytesMut::new(),
            limit,
            truncated: false,
            slot: Some(slot),
        }
    }

    pub(crate) fn observe(&mut self, data: &[u8]) {
        if self.truncated {
            return;
        }
        if self.buf.len() + data.len() > self.limit {
            // Past the limit nothing is copied: the body is not inspected.
            self.truncated = true;
            self.buf = BytesMut::new();
            return;
        }
        self.buf.extend_from_slice(data);
    }

    pub(crate) fn finish(&mut self, complete: bool) -> Captured {
        let captured = Captured {
            bytes: std::mem::take(&mut self.buf).freeze(),
            complete,
            truncated: self.truncated,
        };
        if let Some(slot) = self.slot.take() {
            let _ = slot.set(captured.clone());
        }
        captured
    }
}

impl Drop for Tee {
    fn drop(&mut self) {
        if self.slot.is_some() {
            self.finish(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_up_to_the_limit() {
        let mut tee = Tee::new(8);
        tee.observe(b"abc");
        tee.observe(b"defgh");
        let c = tee.finish(true);
        assert_eq!(c.whole(), Some(&b"abcdefgh"[..]));

        let mut tee = Tee::new(8);
        tee.observe(b"abcdefgh");
        tee.observe(b"i");
        tee.observe(b"j");
        let c = tee.finish(true);
        assert!(c.truncated);
        assert_eq!(c.whole(), None);
    }

    #[test]
    fn publishes_on_drop_as_incomplete() {
        let slot = CaptureSlot::default();
        {
            let mut tee = Tee::publishing(8, slot.clone());
            tee.observe(b"ab");
        }
        let c = slot.get().unwrap();
        assert_eq!(
            format!("{c:?}"),
            "Captured { len: 2, complete: false, truncated: false }"
        );
        assert!(!c.complete);
        assert_eq!(&c.bytes[..], b"ab");
        assert_eq!(c.whole(), None);
    }
}
