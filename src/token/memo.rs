//! [`Memo`]: what the layers above work out once per inspected token.

use std::any::Any;
use std::fmt;
use std::sync::OnceLock;

/// Data derived from an [`InspectedToken`](super::InspectedToken) by the code that uses it
/// (the event parts every request with the token repeats), worked out on first use and kept
/// with the token: it lives as long as the token's cache entry, so it is bounded by the
/// inspector's cache, and it holds nothing of the token itself.
///
/// A clone starts empty, so a token copied to be changed (another verdict) never carries
/// what was derived from the original. It takes no part in comparisons.
#[derive(Default)]
pub(crate) struct Memo(OnceLock<Box<dyn Any + Send + Sync>>);

impl Memo {
    /// The derived data, made by `make` on first use. `None` only if the memo already holds
    /// data of another type (one user per memo: never).
    pub(crate) fn get_or_init<T: Any + Send + Sync>(&self, make: impl FnOnce() -> T) -> Option<&T> {
        self.0.get_or_init(|| Box::new(make())).downcast_ref()
    }
}

impl Clone for Memo {
    fn clone(&self) -> Self {
        Memo::default()
    }
}

impl PartialEq for Memo {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Memo {}

impl fmt::Debug for Memo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "Memo(..)"
        } else {
            "Memo(None)"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_and_never_cloned() {
        let memo = Memo::default();
        let mut made = 0;
        assert_eq!(
            memo.get_or_init(|| {
                made += 1;
                7u32
            }),
            Some(&7)
        );
        assert_eq!(
            memo.get_or_init(|| {
                made += 1;
                8u32
            }),
            Some(&7)
        );
        assert_eq!(made, 1);
        assert_eq!(memo.get_or_init(|| "text"), None, "another type");
        assert_eq!(
            memo.clone().get_or_init(|| 9u32),
            Some(&9),
            "a clone starts empty"
        );
    }
}
