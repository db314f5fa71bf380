//! Which of Pinterest's match keys an event carried ([`MatchKeys`]), and how many events carried
//! each ([`MatchKeyCounts`]): the one type the batch counts, the records, reconcile and Event
//! Quality all count with.

use serde::{Deserialize, Serialize};

use super::Event;

/// Which of Pinterest's match keys a sent event carried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchKeys {
    /// A hashed email (`em`).
    pub email: bool,
    /// A hashed phone (`ph`).
    pub phone: bool,
    /// Both the client IP address and user agent.
    pub ip_ua: bool,
    /// The `_epik` click id.
    pub click_id: bool,
    /// A hashed external id (the Shopify customer).
    pub external_id: bool,
}

impl MatchKeys {
    /// The match keys of an event as sent.
    pub fn of(event: &Event) -> Self {
        let u = &event.user_data;
        Self {
            email: !u.em.is_empty(),
            phone: !u.ph.is_empty(),
            ip_ua: u.client_ip_address.is_some() && u.client_user_agent.is_some(),
            click_id: u.click_id.is_some(),
            external_id: !u.external_id.is_empty(),
        }
    }
}

/// Of some sent events, how many there were and how many carried each match key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MatchKeyCounts {
    /// Events counted: the denominator.
    pub events: u64,
    /// With `em`.
    pub email: u64,
    /// With `ph`.
    pub phone: u64,
    /// With both IP address and user agent.
    pub ip_ua: u64,
    /// With the `_epik` click id.
    pub click_id: u64,
    /// With `external_id`.
    pub external_id: u64,
}

impl MatchKeyCounts {
    /// Counts one more event carrying `keys`.
    pub fn add(&mut self, keys: &MatchKeys) {
        self.events += 1;
        self.email += u64::from(keys.email);
        self.phone += u64::from(keys.phone);
        self.ip_ua += u64::from(keys.ip_ua);
        self.click_id += u64::from(keys.click_id);
        self.external_id += u64::from(keys.external_id);
    }

    /// The keys with their counts, in display order.
    pub fn keys(&self) -> [(&'static str, u64); 5] {
        [
            ("email", self.email),
            ("phone", self.phone),
            ("ip_ua", self.ip_ua),
            ("click_id", self.click_id),
            ("external_id", self.external_id),
        ]
    }
}
