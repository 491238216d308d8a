//! Copies at most N bytes of a body as it streams past, without holding it up.
//!
//! Neutral ground: the layer wraps bodies with a [`Tee`], the OAuth classifiers read what it
//! copied ([`Captured`]) and size it ([`CaptureBudget`]); neither owns it, so neither has to
//! reach into the other.

use std::io::IoSlice;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::{Buf, Bytes, BytesMut};

/// The bytes every tee of one [`Endpoints`](crate::oauth::Endpoints) may hold at once.
///
/// A tee reserves what it copies and gives it back when its copy is dropped (after the
/// event is built), so many concurrent endpoint requests cannot make the layer hold
/// `body_limit` bytes each without bound.
#[derive(Clone, Debug)]
pub(crate) struct CaptureBudget {
    available: Arc<AtomicUsize>,
}

impl CaptureBudget {
    pub(crate) fn new(bytes: usize) -> Self {
        CaptureBudget {
            available: Arc::new(AtomicUsize::new(bytes)),
        }
    }

    /// Takes `bytes` from the budget, or nothing when fewer are left.
    fn reserve(&self, bytes: usize) -> bool {
        self.available
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
                left.checked_sub(bytes)
            })
            .is_ok()
    }

    fn release(&self, bytes: usize) {
        self.available.fetch_add(bytes, Ordering::AcqRel);
    }

    /// Bytes not held by any tee.
    #[cfg(test)]
    pub(crate) fn available(&self) -> usize {
        self.available.load(Ordering::Acquire)
    }
}

/// Bytes of a [`CaptureBudget`] held by one copy; returned when the [`Captured`] holding
/// them is dropped.
#[derive(Debug)]
struct Held {
    budget: CaptureBudget,
    bytes: usize,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.budget.release(self.bytes);
    }
}

/// What a tee saw of a body.
#[derive(Default)]
pub(crate) struct Captured {
    /// The first bytes of the body (all of it when `complete` and not `truncated`).
    pub(crate) bytes: Bytes,
    /// The body reached its end.
    pub(crate) complete: bool,
    /// The body was longer than the limit, or the budget had no room for it; `bytes` holds
    /// only its beginning.
    pub(crate) truncated: bool,
    /// A frame's data did not show all its bytes without being consumed (a `Buf` whose
    /// `chunks_vectored` gives fewer): the body was passed on untouched but not read.
    /// `truncated` is set too.
    pub(crate) unreadable: bool,
    /// The body was within the limit, but the shared budget had no room for it (other
    /// requests' bodies held it): `truncated` is set too.
    pub(crate) over_budget: bool,
    _held: Option<Held>,
}

impl PartialEq for Captured {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
            && self.complete == other.complete
            && self.truncated == other.truncated
            && self.unreadable == other.unreadable
            && self.over_budget == other.over_budget
    }
}

impl Eq for Captured {}

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
            .field("unreadable", &self.unreadable)
            .field("over_budget", &self.over_budget)
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
    unreadable: bool,
    over_budget: bool,
    /// Bytes of the body seen, copied or not.
    seen: usize,
    slot: Option<CaptureSlot>,
    budget: Option<CaptureBudget>,
    reserved: usize,
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
            unreadable: false,
            over_budget: false,
            seen: 0,
            slot: None,
            budget: None,
            reserved: 0,
        }
    }

    /// A tee that publishes into `slot` when the body ends or is dropped.
    pub(crate) fn publishing(limit: usize, slot: CaptureSlot) -> Self {
        let mut tee = Tee::new(limit);
        tee.slot = Some(slot);
        tee
    }

    /// Copies only what `budget` has room for.
    pub(crate) fn within(mut self, budget: &CaptureBudget) -> Self {
        self.budget = Some(budget.clone());
        self
    }

    pub(crate) fn observe(&mut self, data: &[u8]) {
        self.seen = self.seen.saturating_add(data.len());
        if self.truncated {
            // A body refused by the budget that turns out past the limit is too large.
            if self.seen > self.limit {
                self.over_budget = false;
            }
            return;
        }
        let fits_limit = self.buf.len() + data.len() <= self.limit;
        let fits_budget = fits_limit
            && self
                .budget
                .as_ref()
                .is_none_or(|budget| budget.reserve(data.len()));
        if !fits_budget {
            // Past the limit (or the budget) nothing is copied: the body is not inspected.
            self.over_budget = fits_limit;
            self.give_up();
            return;
        }
        if self.budget.is_some() {
            self.reserved += data.len();
        }
        self.buf.extend_from_slice(data);
    }

    /// Copies a frame's data, every chunk of it. Data that cannot show all its bytes
    /// without being consumed is not read at all (see [`Captured::unreadable`]).
    pub(crate) fn observe_buf(&mut self, data: &impl Buf) {
        let remaining = data.remaining();
        let first = data.chunk();
        if first.len() == remaining {
            return self.observe(first);
        }
        let mut slices = [IoSlice::new(&[]); 16];
        let n = data.chunks_vectored(&mut slices);
        let slices = &slices[..n];
        if slices.iter().map(|s| s.len()).sum::<usize>() != remaining {
            self.seen = self.seen.saturating_add(remaining);
            if self.seen > self.limit {
                self.over_budget = false;
            }
            if !self.truncated {
                self.unreadable = true;
                self.give_up();
            }
            return;
        }
        for slice in slices {
            self.observe(slice);
        }
    }

    /// Stops copying: the body will not be inspected.
    fn give_up(&mut self) {
        self.truncated = true;
        self.buf = BytesMut::new();
        self.give_back();
    }

    fn give_back(&mut self) {
        if let Some(budget) = &self.budget {
            budget.release(std::mem::take(&mut self.reserved));
        }
    }

    /// Ends the copy. What was copied goes to the slot of a publishing tee (and `None` is
    /// returned), else to the caller: moved either way, never shared, so freezing the
    /// buffer allocates nothing more.
    pub(crate) fn finish(&mut self, complete: bool) -> Option<Captured> {
        let held = match (&self.budget, std::mem::take(&mut self.reserved)) {
            (Some(budget), bytes) if bytes > 0 => Some(Held {
                budget: budget.clone(),
                bytes,
            }),
            _ => None,
        };
        let captured = Captured {
            bytes: std::mem::take(&mut self.buf).freeze(),
            complete,
            truncated: self.truncated,
            unreadable: self.unreadable,
            over_budget: self.over_budget,
            _held: held,
        };
        match self.slot.take() {
            Some(slot) => {
                let _ = slot.set(captured);
                None
            }
            None => Some(captured),
        }
    }
}

impl Drop for Tee {
    fn drop(&mut self) {
        if self.slot.is_some() {
            self.finish(false);
        }
        self.give_back();
    }
}

/// A `Buf` that shows only its first chunk without being consumed, as
/// `Buf::chunks_vectored`'s default does: data a tee cannot read.
#[cfg(test)]
pub(crate) struct FirstChunkOnly<B>(pub(crate) B);

#[cfg(test)]
impl<B: Buf> Buf for FirstChunkOnly<B> {
    fn remaining(&self) -> usize {
        self.0.remaining()
    }
    fn chunk(&self) -> &[u8] {
        self.0.chunk()
    }
    fn advance(&mut self, n: usize) {
        self.0.advance(n)
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
        let c = tee.finish(true).unwrap();
        assert_eq!(c.whole(), Some(&b"abcdefgh"[..]));

        let mut tee = Tee::new(8);
        tee.observe(b"abcdefgh");
        tee.observe(b"i");
        tee.observe(b"j");
        let c = tee.finish(true).unwrap();
        assert!(c.truncated);
        assert!(!c.over_budget);
        assert_eq!(c.whole(), None);
    }

    #[test]
    fn copies_share_one_budget_and_give_it_back() {
        let budget = CaptureBudget::new(10);
        let mut first = Tee::new(8).within(&budget);
        first.observe(b"abcdef");
        let mut second = Tee::new(8).within(&budget);
        second.observe(b"ghij");
        assert_eq!(budget.available(), 0, "6 + 4 bytes held");
        second.observe(b"k");
        let second = second.finish(true).unwrap();
        assert!(second.truncated, "no room left for the 11th byte");
        assert!(second.over_budget, "within its own limit");
        // A body refused by the budget that then goes past its limit is too large.
        let mut long = Tee::new(8).within(&budget);
        long.observe(b"abcde");
        long.observe(b"fghij");
        let long = long.finish(true).unwrap();
        assert!(long.truncated && !long.over_budget);
        assert_eq!(second.whole(), None);
        assert_eq!(
            budget.available(),
            4,
            "the truncated copy gave its 4 bytes back"
        );
        let captured = first.finish(true).unwrap();
        assert_eq!(captured.whole(), Some(&b"abcdef"[..]));
        assert_eq!(budget.available(), 4, "6 held while the capture lives");
        drop(captured);
        assert_eq!(budget.available(), 10);

        let mut dropped = Tee::new(8).within(&budget);
        dropped.observe(b"abc");
        drop(dropped);
        assert_eq!(
            budget.available(),
            10,
            "a tee dropped unfinished gives back"
        );
    }

    #[test]
    fn a_publishing_tee_hands_its_copy_to_the_slot() {
        let budget = CaptureBudget::new(10);
        let slot = CaptureSlot::default();
        let mut tee = Tee::publishing(8, slot.clone()).within(&budget);
        tee.observe(b"abc");
        assert!(tee.finish(true).is_none(), "the copy went to the slot");
        assert_eq!(slot.get().unwrap().whole(), Some(&b"abc"[..]));
        assert_eq!(budget.available(), 7, "3 held while the slot holds them");
        drop(tee);
        assert_eq!(
            budget.available(),
            7,
            "a finished tee gives back nothing more"
        );
        drop(slot);
        assert_eq!(budget.available(), 10);

        // Dropped before it finished: published as incomplete, the budget held by the slot.
        let slot = CaptureSlot::default();
        let mut tee = Tee::publishing(8, slot.clone()).within(&budget);
        tee.observe(b"abcd");
        drop(tee);
        assert!(!slot.get().unwrap().complete);
        assert_eq!(budget.available(), 6, "4 held while the slot holds them");
        drop(slot);
        assert_eq!(budget.available(), 10);
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
            "Captured { len: 2, complete: false, truncated: false, unreadable: false, over_budget: false }"
        );
        assert!(!c.complete);
        assert_eq!(&c.bytes[..], b"ab");
        assert_eq!(c.whole(), None);
    }

    #[test]
    fn every_chunk_of_a_frame_is_copied_or_none() {
        let mut tee = Tee::new(64);
        tee.observe_buf(&Bytes::from_static(b"grant_type="));
        tee.observe_buf(&(&b"client_"[..]).chain(&b"credentials"[..]));
        let c = tee.finish(true).unwrap();
        assert_eq!(c.whole(), Some(&b"grant_type=client_credentials"[..]));
        assert!(!c.unreadable);

        let budget = CaptureBudget::new(100);
        let mut tee = Tee::new(64).within(&budget);
        tee.observe_buf(&Bytes::from_static(b"grant_type="));
        tee.observe_buf(&FirstChunkOnly(
            (&b"client_"[..]).chain(&b"credentials"[..]),
        ));
        tee.observe_buf(&Bytes::from_static(b"&scope=a"));
        let c = tee.finish(true).unwrap();
        assert!(c.unreadable && c.truncated);
        assert_eq!(c.whole(), None);
        assert!(c.bytes.is_empty(), "nothing of an unread body is kept");
        assert_eq!(budget.available(), 100, "and nothing of the budget held");
    }
}
