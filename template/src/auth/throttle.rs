//! Login throttling: how many times an account's password may be checked.
//!
//! A hard lock after N failures lets anyone lock anyone out, admins
//! included. Instead, checks are counted per (account, client address) and
//! per account over all addresses, in fixed windows:
//!
//! - one address gets `per_address` checks of an account per window, so an
//!   attacker guessing from it is slowed to a crawl while the owner, from
//!   any other address, still logs in;
//! - all addresses together get `per_account`, so that many addresses
//!   cannot guess for long either. This ceiling is the trade-off: enough
//!   addresses can still keep an account's logins refused until the window
//!   ends (`unlock-account` and the admin API lift it).
//!
//! Each check is reserved in the database *before* its hash is computed, in
//! one atomic statement, so concurrent guesses cannot all slip past a count
//! read beforehand. A correct password clears its address's count.

use std::{net::IpAddr, time::Duration};

use uuid::Uuid;

use super::unix_millis;
use crate::db::{Pool, window_counters};

#[derive(Clone, Copy, Debug)]
pub struct ThrottlePolicy {
    pub per_address: u32,
    pub per_account: u32,
    pub window: Duration,
}

impl ThrottlePolicy {
    /// Reserves one check of `user_id`'s password from `client`; `false`
    /// when a budget of the window is spent and the password must not be
    /// checked.
    pub async fn reserve(&self, db: &Pool, user_id: Uuid, client: IpAddr) -> Result<bool, sqlx::Error> {
        let (now, window) = (unix_millis(), self.window_millis());
        // The address first: a throttled address never counts against the
        // account's ceiling, so one address alone cannot reach it.
        Ok(window_counters::reserve(db, &address_key(user_id, client), self.per_address, now, window).await?
            && window_counters::reserve(db, &account_key(user_id), self.per_account, now, window).await?)
    }

    /// After a correct password: the address's count starts over, and the
    /// check is given back to the account's ceiling.
    pub async fn succeeded(&self, db: &Pool, user_id: Uuid, client: IpAddr) -> Result<(), sqlx::Error> {
        window_counters::clear(db, &address_key(user_id, client)).await?;
        window_counters::release(db, &account_key(user_id)).await
    }

    fn window_millis(&self) -> i64 {
        i64::try_from(self.window.as_millis()).unwrap_or(i64::MAX)
    }
}

/// Lifts every throttle of an account.
pub async fn unlock(db: &Pool, user_id: Uuid) -> Result<(), sqlx::Error> {
    window_counters::clear_prefix(db, &format!("login:{user_id}:")).await
}

fn address_key(user_id: Uuid, client: IpAddr) -> String {
    format!("login:{user_id}:{}", source(client))
}

fn account_key(user_id: Uuid) -> String {
    format!("login:{user_id}:*")
}

/// The unit an attacker pays for: one IPv4 address, or one IPv6 /64 (what
/// a single subscriber usually holds, so that walking through its 2^64
/// addresses gains nothing).
fn source(client: IpAddr) -> String {
    match client {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                v4.to_string()
            } else {
                let [a, b, c, d, ..] = v6.segments();
                format!("{a:x}:{b:x}:{c:x}:{d:x}::/64")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_addresses_or_ipv6_subscriber_prefixes() {
        let ip = |text: &str| text.parse::<IpAddr>().expect("address");
        assert_eq!(source(ip("203.0.113.9")), "203.0.113.9");
        assert_eq!(source(ip("::ffff:203.0.113.9")), "203.0.113.9");
        assert_eq!(source(ip("2001:db8:1:2:3:4:5:6")), "2001:db8:1:2::/64");
        assert_eq!(source(ip("2001:db8:1:2:ffff::1")), source(ip("2001:db8:1:2::9")));
        assert_ne!(source(ip("2001:db8:1:3::1")), source(ip("2001:db8:1:2::1")));
    }
}
