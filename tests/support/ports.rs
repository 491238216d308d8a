//! Free loopback ports for the servers the tests start as separate processes.
//!
//! A port found free by binding port 0 is free only until the server takes it, and tests run
//! in parallel: two of them asking at once could be handed the same port, and then one
//! server fails to start while its test talks to the other's server without knowing. Every
//! port handed out here is remembered for the life of the test process and never handed out
//! again, so a stopped server's port also stays its own for a restart.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::sync::Mutex;

static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// A loopback port nobody listens on right now and no other caller in this process got.
pub fn free_port() -> u16 {
    let mut handed_out = HANDED_OUT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if handed_out.insert(port) {
            return port;
        }
    }
}
