//! Counting limits keyed by who holds the slots: at most `max` at once per user or per client
//! address. One mechanism for every per-key cap of the server (TCP connections and WebSockets
//! per address, WebSockets, uploads and preview fetches per user), so they all behave alike: a
//! refused caller is told at once (nothing queues), and a [`Slot`] gives its place back when it
//! is dropped, however the work holding it ends.
//!
//! Memory is bounded by the slots held: a key has an entry only while it holds at least one.

use crate::error::ApiError;
use confab_shared::ids::UserId;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// At most `max` slots per key at once (`0` means no limit).
pub struct KeyedLimit<K: Hash + Eq + Clone> {
    max: usize,
    /// Slots held per key. A `std` mutex: every critical section is one map update, never held
    /// across an await.
    held: Arc<Mutex<HashMap<K, usize>>>,
}

/// One slot of a [`KeyedLimit`], given back on drop.
#[must_use = "the slot is given back as soon as it is dropped"]
pub struct Slot<K: Hash + Eq + Clone> {
    key: K,
    /// `None` for a limit of 0 (nothing counted).
    held: Option<Arc<Mutex<HashMap<K, usize>>>>,
}

impl<K: Hash + Eq + Clone> std::fmt::Debug for Slot<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Slot")
    }
}

impl<K: Hash + Eq + Clone> KeyedLimit<K> {
    /// A limit of `max` slots per key; `0` admits everyone.
    pub fn new(max: usize) -> Self {
        Self {
            max,
            held: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The limit per key (`0`: none).
    pub fn max(&self) -> usize {
        self.max
    }

    /// A slot for `key`, or `None` when it already holds `max`.
    pub fn try_acquire(&self, key: K) -> Option<Slot<K>> {
        if self.max == 0 {
            return Some(Slot { key, held: None });
        }
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let count = held.entry(key.clone()).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        drop(held);
        Some(Slot {
            key,
            held: Some(self.held.clone()),
        })
    }

    /// How many slots `key` holds now.
    pub fn held(&self, key: &K) -> usize {
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.get(key).copied().unwrap_or(0)
    }

    /// How many keys hold at least one slot.
    pub fn keys(&self) -> usize {
        self.held.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

impl<K: Hash + Eq + Clone> Drop for Slot<K> {
    fn drop(&mut self) {
        let Some(held) = &self.held else { return };
        let mut held = held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = held.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.key);
            }
        }
    }
}

/// The caps on open WebSockets per user and per client address, below the global
/// `CONFAB_MAX_CONNECTIONS`, so that one account or one machine cannot take every slot. A
/// socket over a cap is refused at the upgrade (429): the new one is refused, the open ones
/// stay, so a stolen session cannot push its owner's sockets out.
pub struct SocketLimits {
    per_user: KeyedLimit<UserId>,
    per_address: KeyedLimit<IpAddr>,
}

/// The slots an open WebSocket holds, given back when its session ends.
#[derive(Debug)]
pub struct SocketSlots {
    _user: Slot<UserId>,
    _address: Slot<IpAddr>,
}

impl SocketLimits {
    /// At most `per_user` sockets per user and `per_address` per address (0: no limit).
    pub fn new(per_user: usize, per_address: usize) -> Self {
        Self {
            per_user: KeyedLimit::new(per_user),
            per_address: KeyedLimit::new(per_address),
        }
    }

    /// Slots for one more socket of `user` from `address`, or the 429 that refuses it.
    pub fn admit(&self, user: UserId, address: IpAddr) -> Result<SocketSlots, ApiError> {
        let user_slot = self.per_user.try_acquire(user).ok_or_else(|| {
            ApiError::TooMany(format!(
                "too many open connections for this user (at most {})",
                self.per_user.max()
            ))
        })?;
        let address_slot = self.per_address.try_acquire(address).ok_or_else(|| {
            ApiError::TooMany(format!(
                "too many open connections from this address (at most {})",
                self.per_address.max()
            ))
        })?;
        Ok(SocketSlots {
            _user: user_slot,
            _address: address_slot,
        })
    }
}

/// How fast messages may be posted over HTTP (`POST /api/rooms/{id}/messages`, incoming
/// webhooks): per poster (a user, a bot, a webhook), the WebSocket's per-connection send rate
/// (`CONFAB_SEND_RATE` a second, bursts of twice that), so a bot is limited like a person.
pub struct PostRate {
    limiter: governor::DefaultKeyedRateLimiter<uuid::Uuid>,
}

impl PostRate {
    pub fn new(per_second: u32) -> Self {
        let rate =
            std::num::NonZeroU32::new(per_second.max(1)).unwrap_or(std::num::NonZeroU32::MIN);
        let burst =
            rate.saturating_mul(std::num::NonZeroU32::new(2).unwrap_or(std::num::NonZeroU32::MIN));
        Self {
            limiter: governor::RateLimiter::keyed(
                governor::Quota::per_second(rate).allow_burst(burst),
            ),
        }
    }

    /// Takes one post of `poster`'s budget; `Err(retry after)` when it is spent.
    pub fn check(&self, poster: uuid::Uuid) -> Result<(), std::time::Duration> {
        use governor::clock::Clock;
        self.limiter.check_key(&poster).map_err(|not_until| {
            not_until.wait_time_from(governor::clock::DefaultClock::default().now())
        })
    }

    /// Forgets posters whose budget is full again (called by the periodic pruner).
    pub fn prune(&self) {
        self.limiter.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_holds_at_most_max_and_gets_slots_back_on_drop() {
        let limit = KeyedLimit::new(2);
        let a1 = limit.try_acquire("a");
        let a2 = limit.try_acquire("a");
        assert!(a1.is_some() && a2.is_some());
        assert!(limit.try_acquire("a").is_none(), "a third is refused");
        assert!(
            limit.try_acquire("b").is_some(),
            "other keys are unaffected"
        );
        drop(a1);
        assert_eq!(limit.held(&"a"), 1);
        assert!(limit.try_acquire("a").is_some());
        drop(a2);
        assert_eq!(limit.keys(), 0, "keys without slots are forgotten");
    }

    #[test]
    fn zero_means_no_limit() {
        let limit = KeyedLimit::new(0);
        let slots: Vec<_> = (0..100).filter_map(|_| limit.try_acquire(1)).collect();
        assert_eq!(slots.len(), 100);
        assert_eq!(limit.keys(), 0);
    }
}
