//! Fuzzes the browser endpoint's parser and the translation of whatever it accepts: arbitrary bytes
//! must yield a clear error or a valid event, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pinrelay::browser::{self, ReceivedBrowserEvent};

fuzz_target!(|data: &[u8]| {
    if let Ok(event) = browser::parse(data) {
        let received = ReceivedBrowserEvent {
            event,
            client_ip: None,
            user_agent: None,
        };
        let _ = browser::translate(&received, chrono::Utc::now());
    }
});
