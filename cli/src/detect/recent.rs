//! The ids of the events seen last, so that an event delivered twice (a redelivery, or a
//! writer's resend outside the stream's duplicate window) counts once toward a rule.

use std::collections::{HashSet, VecDeque};

use uuid::Uuid;

/// The last `capacity` distinct ids, the oldest forgotten first: memory stays at about
/// 50 bytes per id whatever the traffic.
#[derive(Debug)]
pub struct RecentIds {
    order: VecDeque<Uuid>,
    known: HashSet<Uuid>,
    capacity: usize,
}

impl RecentIds {
    /// Remembers up to `capacity` ids (0: none, every event is new).
    pub fn new(capacity: usize) -> RecentIds {
        // Grown as ids arrive: a large cap costs nothing until it fills.
        RecentIds {
            order: VecDeque::new(),
            known: HashSet::new(),
            capacity,
        }
    }

    /// Remembers `id`; whether it was new (not among the ids remembered).
    pub fn insert(&mut self, id: Uuid) -> bool {
        if self.capacity == 0 {
            return true;
        }
        if !self.known.insert(id) {
            return false;
        }
        if self.order.len() == self.capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.known.remove(&oldest);
            }
        }
        self.order.push_back(id);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_new_once_until_it_is_pushed_out() {
        let ids: Vec<Uuid> = (0..4u128).map(Uuid::from_u128).collect();
        let mut recent = RecentIds::new(3);
        assert!(recent.insert(ids[0]));
        assert!(!recent.insert(ids[0]));
        assert!(recent.insert(ids[1]));
        assert!(recent.insert(ids[2]));
        assert!(!recent.insert(ids[0]), "still among the last 3");
        assert!(recent.insert(ids[3]), "pushes out the oldest");
        assert!(recent.insert(ids[0]), "forgotten");
        assert_eq!(recent.order.len(), 3);
        assert_eq!(recent.known.len(), 3);

        let mut off = RecentIds::new(0);
        assert!(off.insert(ids[0]) && off.insert(ids[0]));
    }
}
