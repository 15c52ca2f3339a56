//! A bounded cache of decoded snapshots and segments. They are immutable, so an
//! entry never goes stale; the bound keeps memory flat.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use super::meta::{Segment, Snapshot};

#[derive(Clone)]
enum Entry {
    Snapshot(Arc<Snapshot>),
    Segment(Arc<Segment>),
}

struct Inner {
    map: HashMap<String, Entry>,
    order: VecDeque<String>,
}

pub struct MetaCache {
    capacity: usize,
    inner: Mutex<Inner>,
}

impl MetaCache {
    pub fn new(capacity: usize) -> Self {
        MetaCache {
            capacity,
            inner: Mutex::new(Inner {
                map: HashMap::new(),
                order: VecDeque::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    pub fn snapshot(&self, key: &str) -> Option<Arc<Snapshot>> {
        match self.lock().map.get(key) {
            Some(Entry::Snapshot(s)) => Some(s.clone()),
            _ => None,
        }
    }

    pub fn segment(&self, key: &str) -> Option<Arc<Segment>> {
        match self.lock().map.get(key) {
            Some(Entry::Segment(s)) => Some(s.clone()),
            _ => None,
        }
    }

    pub fn put_snapshot(&self, key: String, value: Arc<Snapshot>) {
        self.put(key, Entry::Snapshot(value));
    }

    pub fn put_segment(&self, key: String, value: Arc<Segment>) {
        self.put(key, Entry::Segment(value));
    }

    /// Forgets every entry whose key starts with `prefix` (a table whose
    /// objects were restored or removed).
    pub fn evict_prefix(&self, prefix: &str) {
        let mut inner = self.lock();
        inner.map.retain(|k, _| !k.starts_with(prefix));
        inner.order.retain(|k| !k.starts_with(prefix));
    }

    fn put(&self, key: String, value: Entry) {
        let mut inner = self.lock();
        if inner.map.insert(key.clone(), value).is_none() {
            inner.order.push_back(key);
        }
        while inner.order.len() > self.capacity {
            if let Some(old) = inner.order.pop_front() {
                inner.map.remove(&old);
            }
        }
    }
}
