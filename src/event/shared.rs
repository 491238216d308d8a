//! [`Shared`]: a part of an event that many events can hold at once, written to JSON once.
//!
//! A protected route's events repeat what their token says (`actor`, `token`,
//! `scopes.granted`) for as long as the token is used. The layer builds those parts once per
//! verified token and every event of that token holds the same copy; the RFC 8785 writer
//! writes each such part once and copies its bytes from then on. A route's required scopes
//! (`scopes.required`, and `scopes.used` when the token had them all) are shared the same
//! way by every event of the route.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, OnceLock};

use serde::{Serialize, Serializer};

use super::canonical;

/// A value of an event that is either the event's own or shared with other events (as an
/// `Arc`), and that behaves as the value either way: it dereferences to it, compares and
/// prints as it, and serialises as it.
///
/// Changing a shared value through [`DerefMut`] first makes it the event's own (a clone, as
/// [`Arc::make_mut`] does), so a change to one event never shows in another. A shared value
/// remembers its canonical JSON (RFC 8785, what every sink writes): the first sink to write
/// it renders it, and every later event that shares it has those bytes copied.
///
/// A shared value serialises as a newtype around the value (so that the canonical writer can
/// recognise it); JSON and the other formats that write a newtype as its content see the
/// value itself, as they do for a value the event owns.
///
/// ```
/// use oauth_audit::event::{Actor, ActorKind, Shared};
///
/// let mut alice = Actor::default();
/// alice.subject = Some("alice".into());
/// let actor = Shared::new(alice);
/// let mut other = actor.clone();
/// other.kind = Some(ActorKind::User); // this event's own copy from now on
/// assert_eq!(actor.kind, None);
/// assert_eq!(other.subject.as_deref(), Some("alice"));
/// assert_eq!(serde_json::to_string(&actor).unwrap(), r#"{"subject":"alice"}"#);
/// ```
pub struct Shared<T>(Repr<T>);

enum Repr<T> {
    Own(T),
    Shared(Arc<Part<T>>),
}

/// A shared value and, once a sink wrote it, its canonical JSON.
struct Part<T> {
    value: T,
    canonical: OnceLock<Box<[u8]>>,
}

impl<T> Shared<T> {
    /// The value as an event's own: nothing is shared or remembered.
    pub const fn own(value: T) -> Self {
        Shared(Repr::Own(value))
    }

    /// The value, ready to be shared by the events that clone it; its canonical JSON is
    /// written once.
    pub fn new(value: T) -> Self {
        Shared(Repr::Shared(Arc::new(Part {
            value,
            canonical: OnceLock::new(),
        })))
    }

    /// Whether the value is shared (cloning it is a reference count), not the event's own.
    pub fn is_shared(&self) -> bool {
        matches!(self.0, Repr::Shared(_))
    }
}

impl<T: Clone> Shared<T> {
    /// The value, cloned out when it is shared.
    pub fn into_inner(self) -> T {
        match self.0 {
            Repr::Own(value) => value,
            Repr::Shared(part) => match Arc::try_unwrap(part) {
                Ok(part) => part.value,
                Err(part) => part.value.clone(),
            },
        }
    }
}

impl<T> Deref for Shared<T> {
    type Target = T;

    fn deref(&self) -> &T {
        match &self.0 {
            Repr::Own(value) => value,
            Repr::Shared(part) => &part.value,
        }
    }
}

impl<T: Clone> DerefMut for Shared<T> {
    /// The value, made the event's own first if it was shared.
    fn deref_mut(&mut self) -> &mut T {
        if let Repr::Shared(part) = &self.0 {
            self.0 = Repr::Own(part.value.clone());
        }
        match &mut self.0 {
            Repr::Own(value) => value,
            Repr::Shared(_) => unreachable!("made the event's own just above"),
        }
    }
}

impl<T> From<T> for Shared<T> {
    fn from(value: T) -> Self {
        Shared::own(value)
    }
}

impl<T: Clone> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Shared(match &self.0 {
            Repr::Own(value) => Repr::Own(value.clone()),
            Repr::Shared(part) => Repr::Shared(Arc::clone(part)),
        })
    }
}

impl<T: Default> Default for Shared<T> {
    fn default() -> Self {
        Shared::own(T::default())
    }
}

impl<T: PartialEq> PartialEq for Shared<T> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl<T: PartialEq> PartialEq<T> for Shared<T> {
    fn eq(&self, other: &T) -> bool {
        **self == *other
    }
}

impl<T: Eq> Eq for Shared<T> {}

impl<T: fmt::Debug> fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

impl<T: Serialize + Send + Sync + 'static> Serialize for Shared<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Repr::Own(value) => value.serialize(serializer),
            Repr::Shared(part) => canonical::offer_rendered(part.clone(), &part.value, serializer),
        }
    }
}

impl<T: Serialize + Send + Sync + 'static> Shared<T> {
    /// The part with its remembered JSON when it is shared; `None` for an event's own value.
    pub(super) fn rendered(&self) -> Option<&dyn canonical::Rendered> {
        match &self.0 {
            Repr::Own(_) => None,
            Repr::Shared(part) => Some(&**part),
        }
    }
}

impl<T: Serialize + Send + Sync + 'static> canonical::Rendered for Part<T> {
    fn write_canonical(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        if let Some(bytes) = self.canonical.get() {
            out.extend_from_slice(bytes);
            return Ok(());
        }
        // Written where it goes, then remembered in one allocation of its length: a buffer
        // of its own would grow several times and shrink once, for every new token's parts.
        let from = out.len();
        canonical::append_canonical_json(out, &self.value)?;
        self.remember(&out[from..]);
        Ok(())
    }

    fn remembered(&self) -> Option<&[u8]> {
        self.canonical.get().map(|bytes| &**bytes)
    }

    fn remember(&self, bytes: &[u8]) {
        // Two sinks may render it at once: both wrote the same bytes.
        let _ = self.canonical.set(bytes.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{canonical_json, Actor, ActorKind, Scopes};

    fn alice() -> Actor {
        Actor {
            subject: Some("alice".into()),
            client_id: Some("app \"one\"".into()),
            kind: Some(ActorKind::User),
            ..Actor::default()
        }
    }

    #[test]
    fn shared_and_own_values_write_the_same_json_with_every_serializer() {
        let own = Shared::own(alice());
        let shared = Shared::new(alice());
        let expected = canonical_json(&alice()).unwrap();
        for _ in 0..3 {
            assert_eq!(canonical_json(&shared).unwrap(), expected);
            assert_eq!(canonical_json(&own).unwrap(), expected);
            assert_eq!(
                serde_json::to_value(&shared).unwrap(),
                serde_json::to_value(alice()).unwrap()
            );
            assert_eq!(serde_json::to_vec(&shared).unwrap(), expected);
        }
        let Repr::Shared(part) = &shared.0 else {
            panic!("shared")
        };
        assert_eq!(
            part.canonical.get().map(|bytes| bytes.to_vec()),
            Some(expected),
            "the canonical writer remembered what it wrote"
        );
    }

    #[test]
    fn a_change_to_one_event_never_shows_in_another() {
        let first = Shared::new(alice());
        // The canonical JSON is remembered before the change.
        canonical_json(&first).unwrap();
        let mut second = first.clone();
        second.subject = Some("mallory".into());
        assert!(first.is_shared() && !second.is_shared());
        assert_eq!(first.subject.as_deref(), Some("alice"));
        let written: serde_json::Value =
            serde_json::from_slice(&canonical_json(&second).unwrap()).unwrap();
        assert_eq!(written["subject"], "mallory");
        let written: serde_json::Value =
            serde_json::from_slice(&canonical_json(&first).unwrap()).unwrap();
        assert_eq!(written["subject"], "alice");
    }

    #[test]
    fn shared_values_nested_in_a_value_serde_json_writes_are_written_in_full() {
        #[derive(Serialize)]
        struct Outer {
            actor: Shared<Actor>,
            granted: Option<Shared<Vec<String>>>,
            scopes: Scopes,
        }
        let outer = Outer {
            actor: Shared::new(alice()),
            granted: Some(Shared::new(vec!["b".into(), "a".into()])),
            scopes: Scopes::default(),
        };
        let canonical: serde_json::Value =
            serde_json::from_slice(&canonical_json(&outer).unwrap()).unwrap();
        assert_eq!(canonical, serde_json::to_value(&outer).unwrap());
        assert_eq!(canonical["granted"], serde_json::json!(["b", "a"]));
        // serde_json left nothing behind for the canonical writer to pick up by mistake.
        let plain = Outer {
            actor: Shared::own(Actor::default()),
            granted: None,
            scopes: Scopes::default(),
        };
        serde_json::to_value(&outer).unwrap();
        assert_eq!(
            canonical_json(&plain).unwrap(),
            br#"{"actor":{},"granted":null,"scopes":{}}"#
        );
    }

    #[test]
    fn into_inner_gives_the_value_back() {
        let shared = Shared::new(alice());
        let again = shared.clone();
        assert_eq!(shared.into_inner(), alice());
        assert_eq!(again.into_inner(), alice());
        assert_eq!(Shared::own(alice()).into_inner(), alice());
    }
}
