//! The SCRAM exchange, which reads a client's messages before it has
//! proven anything: any client-first and client-final bytes must be
//! answered or refused, never panic.
//!
//! Input: byte 0 picks the mechanism (bit 0: PLUS) and whether the
//! connection is TLS (bit 1); the rest is client-first, a NUL, client-final.
#![no_main]

use std::sync::LazyLock;

use fusegate::wire::scram::{Exchange, Verifier};
use libfuzzer_sys::fuzz_target;

static VERIFIER: LazyLock<Verifier> = LazyLock::new(|| Verifier::from_password("pencil"));

fuzz_target!(|data: &[u8]| {
    let [flags, rest @ ..] = data else {
        return;
    };
    let (first, last) = match rest.iter().position(|&b| b == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let cert_hash = [7u8; 32];
    let tls = (flags & 2 != 0).then_some(&cert_hash[..]);
    if let Ok((exchange, _server_first)) =
        Exchange::start(VERIFIER.clone(), first, flags & 1 != 0, tls)
    {
        let _ = exchange.finish(last);
    }
});
