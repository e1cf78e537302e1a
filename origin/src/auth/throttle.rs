//! Login throttling, per account and per client address (GCRA from `governor`). Memory stays
//! bounded: idle keys are pruned periodically by [`LoginThrottle::prune`].

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

/// Per-account and per-address limits on login attempts.
pub struct LoginThrottle {
    accounts: DefaultKeyedRateLimiter<String>,
    addresses: DefaultKeyedRateLimiter<IpAddr>,
}

/// Which limit refused an attempt, and when to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after: Duration,
}

fn quota(burst: u32, every: Duration) -> Quota {
    // Both numbers are non-zero constants below.
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
    /// Per account: 10 attempts at once, then one more every 30 seconds. Per address:
    /// `address_burst` attempts at once (shared NAT is common), then one every 2 seconds.
    pub fn new(address_burst: u32) -> Self {
        Self {
            accounts: RateLimiter::keyed(quota(10, Duration::from_secs(30))),
            addresses: RateLimiter::keyed(quota(address_burst, Duration::from_secs(2))),
        }
    }

    /// Counts one attempt against the address and (when named) the account.
    pub fn check(&self, account: Option<&str>, address: IpAddr) -> Result<(), Throttled> {
        let clock = governor::clock::DefaultClock::default();
        use governor::clock::Clock;
        if let Err(not_until) = self.addresses.check_key(&address) {
            return Err(Throttled {
                retry_after: not_until.wait_time_from(clock.now()),
            });
        }
        if let Some(account) = account {
            if let Err(not_until) = self.accounts.check_key(&account.to_owned()) {
                return Err(Throttled {
                    retry_after: not_until.wait_time_from(clock.now()),
                });
            }
        }
        Ok(())
    }

    /// Drops the state of keys that are back at full allowance.
    pub fn prune(&self) {
        self.accounts.retain_recent();
        self.addresses.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_is_throttled_after_its_burst() {
        let t = LoginThrottle::default();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        for i in 0..10 {
            let addr = if i % 2 == 0 { ip } else { other };
            assert!(t.check(Some("ann"), addr).is_ok());
        }
        assert!(t.check(Some("ann"), ip).is_err());
        assert!(
            t.check(Some("bob"), ip).is_ok(),
            "other accounts are unaffected"
        );
    }
}
