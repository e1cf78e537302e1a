//! Password-guessing limits, for logins and password changes alike.
//!
//! - Per client address, every attempt counts: `address_burst` at once (shared NAT is common),
//!   then one every 2 seconds (GCRA from `governor`).
//! - Per account, failed attempts count: 10 at once, then one more every 30 seconds. The account
//!   is the one the login resolved to, so its username and its e-mail share one budget; a login
//!   naming no account has a budget of its own under that name, so throttling behaves the same
//!   whether or not the account exists.
//! - An account out of budget is not locked for everyone: an attempt from an address with no
//!   failure on that account in the last 15 minutes is still checked (and counts if it fails),
//!   so a stranger's guessing cannot lock the owner out, while the guesser, whose address has
//!   failed, gets 429 without a check. The price: an attacker with many fresh addresses gets
//!   one check per address per 15 minutes on a locked account (the address limit still
//!   applies to each).
//!
//! Memory stays bounded: [`LoginThrottle::prune`] drops what has recovered, and the failure
//! tables hold at most [`MAX_TRACKED`] entries each.

use confab_shared::ids::UserId;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed attempts an account takes at once.
const ACCOUNT_BURST: u32 = 10;
/// Then one more per this long.
const ACCOUNT_PERIOD: Duration = Duration::from_secs(30);
/// How long a failure marks the address it came from, for that account.
const RECENT: Duration = Duration::from_secs(15 * 60);
/// Entries kept at most per failure table.
pub const MAX_TRACKED: usize = 100_000;

/// Whose budget an attempt spends.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AccountKey {
    /// A registered account, however it was named (username or e-mail).
    User(UserId),
    /// A login that names no account (folded).
    Unknown(String),
}

/// The limits. One per server, in `AppState::throttle`.
pub struct LoginThrottle {
    addresses: DefaultKeyedRateLimiter<IpAddr>,
    /// A `std` mutex: every critical section is a few map operations, never across an await.
    failures: Mutex<Failures>,
}

#[derive(Default)]
struct Failures {
    /// Per account, the GCRA "theoretical arrival time" of its failures: the account has
    /// budget left while this is at most `now + (ACCOUNT_BURST - 1) * ACCOUNT_PERIOD`.
    accounts: HashMap<AccountKey, Instant>,
    /// The last failure per (account, address).
    recent: HashMap<(AccountKey, IpAddr), Instant>,
}

/// An attempt refused, and when to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after: Duration,
}

fn quota(burst: u32, every: Duration) -> Quota {
    Quota::with_period(every)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN))
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self::new(30)
    }
}

impl LoginThrottle {
    /// `address_burst` attempts at once per address, then one every 2 seconds.
    pub fn new(address_burst: u32) -> Self {
        Self {
            addresses: RateLimiter::keyed(quota(address_burst, Duration::from_secs(2))),
            failures: Mutex::new(Failures::default()),
        }
    }

    /// Counts one attempt (login, registration, password change) against the address.
    pub fn check_address(&self, address: IpAddr) -> Result<(), Throttled> {
        use governor::clock::Clock;
        let clock = governor::clock::DefaultClock::default();
        self.addresses
            .check_key(&address)
            .map_err(|not_until| Throttled {
                retry_after: not_until.wait_time_from(clock.now()),
            })
    }

    /// Whether a password for `account` may be checked now, from `address`.
    pub fn check_account(
        &self,
        account: &AccountKey,
        address: IpAddr,
        now: Instant,
    ) -> Result<(), Throttled> {
        let f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let Some(&tat) = f.accounts.get(account) else {
            return Ok(());
        };
        let allowed_until = now + ACCOUNT_PERIOD * (ACCOUNT_BURST - 1);
        if tat <= allowed_until {
            return Ok(());
        }
        let failed_here = match f.recent.get(&(account.clone(), address)) {
            Some(at) => now.saturating_duration_since(*at) < RECENT,
            // A full table cannot vouch for an address: no way through the lockout then.
            None => f.recent.len() >= MAX_TRACKED,
        };
        if failed_here {
            Err(Throttled {
                retry_after: tat - allowed_until,
            })
        } else {
            Ok(())
        }
    }

    /// Records a wrong password for `account` from `address`.
    pub fn record_failure(&self, account: &AccountKey, address: IpAddr, now: Instant) {
        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let full = f.accounts.len() >= MAX_TRACKED;
        // Names of no account protect nothing: when the table is full they are not tracked;
        // real accounts always are (there are only so many).
        if !full || matches!(account, AccountKey::User(_)) || f.accounts.contains_key(account) {
            let tat = f.accounts.entry(account.clone()).or_insert(now);
            *tat = (*tat).max(now) + ACCOUNT_PERIOD;
        }
        if f.recent.len() < MAX_TRACKED || f.recent.contains_key(&(account.clone(), address)) {
            f.recent.insert((account.clone(), address), now);
        }
    }

    /// Drops the state of keys that are back at full allowance.
    pub fn prune(&self) {
        self.addresses.retain_recent();
        let now = Instant::now();
        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        f.accounts.retain(|_, tat| *tat > now);
        f.recent
            .retain(|_, at| now.saturating_duration_since(*at) < RECENT);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_account_takes_ten_failures_then_one_per_period() {
        let t = LoginThrottle::default();
        let ann = AccountKey::User(UserId(Uuid::nil()));
        let now = Instant::now();
        for _ in 0..10 {
            assert!(t.check_account(&ann, ip("10.0.0.1"), now).is_ok());
            t.record_failure(&ann, ip("10.0.0.1"), now);
        }
        let refused = t.check_account(&ann, ip("10.0.0.1"), now).unwrap_err();
        assert_eq!(refused.retry_after, ACCOUNT_PERIOD);
        assert!(t
            .check_account(&ann, ip("10.0.0.1"), now + ACCOUNT_PERIOD)
            .is_ok());
        let bob = AccountKey::User(UserId(Uuid::max()));
        assert!(
            t.check_account(&bob, ip("10.0.0.1"), now).is_ok(),
            "other accounts are unaffected"
        );
    }

    #[test]
    fn a_locked_account_still_checks_addresses_without_failures() {
        let t = LoginThrottle::default();
        let ann = AccountKey::User(UserId(Uuid::nil()));
        let now = Instant::now();
        for _ in 0..10 {
            t.record_failure(&ann, ip("10.0.0.1"), now);
        }
        assert!(t.check_account(&ann, ip("10.0.0.1"), now).is_err());
        assert!(t.check_account(&ann, ip("10.0.0.2"), now).is_ok());
        t.record_failure(&ann, ip("10.0.0.2"), now);
        assert!(
            t.check_account(&ann, ip("10.0.0.2"), now).is_err(),
            "one failure marks the address"
        );
        assert!(t.check_account(&ann, ip("10.0.0.3"), now).is_ok());
    }
}
