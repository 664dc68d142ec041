//! Long-lived responses (server-sent event streams) within bounds
//! (hardening finding 8): a stream ends when the token that opened it
//! expires, and each person, and the service as a whole, may hold only so
//! many streams open at once.

use creditops_domain::{StaffId, Timestamp};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Streams one person may hold open at one service.
pub const STREAMS_PER_PERSON: usize = 3;
/// Streams one service holds open at most.
pub const STREAMS_IN_TOTAL: usize = 200;

/// When the token of the request expires (`exp`): a response that lives on
/// must not outlive it.
#[derive(Debug, Clone, Copy)]
pub struct TokenExpiry(pub Timestamp);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for TokenExpiry {
    type Rejection = crate::ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<TokenExpiry>()
            .copied()
            .ok_or_else(|| crate::ApiError::unauthenticated("no verified token"))
    }
}

#[derive(Default)]
struct Open {
    per_person: HashMap<StaffId, usize>,
    total: usize,
}

/// The open streams of one service.
#[derive(Default)]
pub struct StreamSlots {
    open: Mutex<Open>,
}

/// One open stream; dropping it (the stream ends or the client goes away)
/// frees the slot.
pub struct StreamSlot {
    slots: Arc<StreamSlots>,
    person: StaffId,
}

impl StreamSlots {
    fn open(&self) -> MutexGuard<'_, Open> {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A slot for `person`, or `None` when they or the service hold the
    /// maximum already.
    pub fn acquire(self: &Arc<Self>, person: &StaffId) -> Option<StreamSlot> {
        let mut open = self.open();
        let held = open.per_person.get(person).copied().unwrap_or(0);
        if held >= STREAMS_PER_PERSON || open.total >= STREAMS_IN_TOTAL {
            return None;
        }
        open.per_person.insert(person.clone(), held + 1);
        open.total += 1;
        Some(StreamSlot {
            slots: Arc::clone(self),
            person: person.clone(),
        })
    }

    /// Streams open now.
    pub fn total(&self) -> usize {
        self.open().total
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.slots.open();
        open.total = open.total.saturating_sub(1);
        if let Some(held) = open.per_person.get_mut(&self.person) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                open.per_person.remove(&self.person);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_bounded_per_person_and_freed_on_drop() {
        let slots = Arc::new(StreamSlots::default());
        let alice = StaffId::parse("rc-1").unwrap();
        let bob = StaffId::parse("rc-2").unwrap();
        let held: Vec<StreamSlot> = (0..STREAMS_PER_PERSON)
            .map(|_| slots.acquire(&alice).expect("within the bound"))
            .collect();
        assert!(slots.acquire(&alice).is_none(), "one more is refused");
        let other = slots
            .acquire(&bob)
            .expect("another person has their own bound");
        assert_eq!(slots.total(), STREAMS_PER_PERSON + 1);
        drop(held);
        drop(other);
        assert_eq!(slots.total(), 0);
        assert!(slots.acquire(&alice).is_some(), "freed slots are reusable");
    }
}
