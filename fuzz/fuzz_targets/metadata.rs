//! Snapshot, segment and catalog objects as read from storage: corrupted
//! bytes must decode to a clear error, not a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = fusegate::fuse::meta::decode::<fusegate::fuse::meta::Snapshot>(data, "fuzz");
    let _ = fusegate::fuse::meta::decode::<fusegate::fuse::meta::Segment>(data, "fuzz");
    let _ = fusegate::fuse::meta::decode::<fusegate::fuse::catalog::CatalogState>(data, "fuzz");
});
