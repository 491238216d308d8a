//! The key set tokens are verified against, shared by the inspector (which reads it on every
//! verification) and the JWKS refresh task (which replaces it).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use super::keys::KeySet;

/// The current key set and a generation that changes with it.
///
/// Replaced whole, never edited: a verification holds the `Arc` it read, so a refresh never
/// waits for verifications and a verification never sees half a key set.
pub(crate) struct KeyStore {
    keys: RwLock<Arc<KeySet>>,
    /// Bumped whenever the key set changes; cached results of older sets are stale.
    generation: AtomicU64,
}

impl KeyStore {
    pub(crate) fn new(keys: KeySet) -> Self {
        KeyStore {
            keys: RwLock::new(Arc::new(keys)),
            generation: AtomicU64::new(0),
        }
    }

    /// The key set in use now.
    pub(crate) fn current(&self) -> Arc<KeySet> {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The generation of the key set in use now.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Puts `keys` in place of the current set.
    pub(crate) fn replace(&self, keys: KeySet) {
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(keys);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replacing_the_keys_moves_the_generation_on() {
        let store = KeyStore::new(KeySet::default());
        let before = store.current();
        assert_eq!(store.generation(), 0);
        store.replace(KeySet::default());
        assert_eq!(store.generation(), 1);
        assert!(!Arc::ptr_eq(&before, &store.current()));
    }
}
