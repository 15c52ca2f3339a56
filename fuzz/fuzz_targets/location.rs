//! Table locations and CONNECTION options, as CREATE TABLE passes them:
//! a URI, then `key = value` lines.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.lines();
    let uri = lines.next().unwrap_or_default();
    let options: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let _ = fusegate::storage::StorageLocation::parse(uri, options);
});
