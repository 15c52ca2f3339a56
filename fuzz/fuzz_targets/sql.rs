//! The SQL dialect and router: any text either parses into statements or
//! fails with an error — never a panic, never a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(sql) = std::str::from_utf8(data) {
        let _ = fusegate::sql::parse(sql);
    }
});
