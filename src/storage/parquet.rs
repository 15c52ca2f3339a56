//! Parquet IO over OpenDAL: the `AsyncFileReader` / `AsyncFileWriter` that the
//! fuse writer and DataFusion's Parquet scan use, built on `parquet_opendal`.
//!
//! Errors leave here as `ParquetError::External(fusegate Error)`, so the layers
//! above can find the storage cause (a missing object, say) in the chain.
//!
//! Blocks are immutable, so their footers (metadata and page index) are
//! decoded once and kept in a bounded cache: a point lookup then costs the
//! one page it reads, not two or three more round trips and a thrift decode.
//! The pages kept lookups read are kept too, in a second bounded cache.

use std::collections::{HashMap, VecDeque};
use std::ops::Range;
use std::sync::{Arc, LazyLock, Mutex};

use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;
use opendal::Writer;
use parquet::arrow::arrow_reader::ArrowReaderOptions;
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::arrow::async_writer::AsyncFileWriter;
use parquet::errors::{ParquetError, Result as ParquetResult};
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData, ParquetMetaDataReader};
use parquet_opendal::{AsyncReader, AsyncWriter};

use super::Storage;

/// Footer bytes fetched with the first read: our blocks' footers fit in this.
const FOOTER_PREFETCH: usize = 64 * 1024;

/// Memory the decoded footers of all blocks may hold.
const FOOTER_CACHE_BYTES: usize = 64 * 1024 * 1024;

/// Memory the cached pages of all blocks may hold.
const PAGE_CACHE_BYTES: usize = 64 * 1024 * 1024;

/// The longest read the page cache keeps.
const PAGE_CACHE_MAX_READ: u64 = 256 * 1024;

/// Values by object identity (service, root, path, size), oldest evicted
/// first past `limit` bytes. Blocks are immutable, so nothing goes stale.
struct Bounded<V> {
    map: HashMap<String, V>,
    order: VecDeque<(String, usize)>,
    bytes: usize,
    limit: usize,
}

impl<V: Clone> Bounded<V> {
    fn new(limit: usize) -> Self {
        Bounded {
            map: HashMap::new(),
            order: VecDeque::new(),
            bytes: 0,
            limit,
        }
    }

    fn get(&self, key: &str) -> Option<V> {
        self.map.get(key).cloned()
    }

    fn put(&mut self, key: String, value: V, size: usize) {
        if size > self.limit || self.map.insert(key.clone(), value).is_some() {
            return;
        }
        self.order.push_back((key, size));
        self.bytes += size;
        while self.bytes > self.limit {
            let Some((old, size)) = self.order.pop_front() else {
                break;
            };
            self.map.remove(&old);
            self.bytes -= size;
        }
    }
}

type Shared<V> = LazyLock<Mutex<Bounded<V>>>;

/// Decoded block footers, with their page indexes.
static FOOTERS: Shared<Arc<ParquetMetaData>> =
    LazyLock::new(|| Mutex::new(Bounded::new(FOOTER_CACHE_BYTES)));

/// Pages of blocks, by block and byte range ([`BlockReader::caching_pages`]).
/// A point lookup reads the same few pages again and again: from here it
/// costs no system call, no zeroed buffer and no copy (together a fifth of a
/// lookup's CPU on local disk), and on object storage no round trip.
static PAGES: Shared<Bytes> = LazyLock::new(|| Mutex::new(Bounded::new(PAGE_CACHE_BYTES)));

fn lock<V>(cache: &'static Shared<V>) -> std::sync::MutexGuard<'static, Bounded<V>> {
    cache
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Reads one Parquet block. The OpenDAL reader is created on first use, so
/// building a `BlockReader` is free and synchronous.
pub struct BlockReader {
    storage: Storage,
    path: String,
    size: u64,
    inner: Option<AsyncReader>,
    /// The object's identity in the caches, made on first use.
    key: Option<String>,
    /// Its footer, once read: it tells pages from whole column chunks.
    meta: Option<Arc<ParquetMetaData>>,
    /// Whether its pages go through the page cache.
    cache_pages: bool,
}

impl BlockReader {
    pub(super) fn new(storage: Storage, path: String, size: u64) -> Self {
        BlockReader {
            storage,
            path,
            size,
            inner: None,
            key: None,
            meta: None,
            cache_pages: false,
        }
    }

    /// Reads the pages the page index narrows a read to through the page
    /// cache: for the scans of kept plans with parameters (point lookups),
    /// which read the same pages again. Other scans do not: with every
    /// scan's pages cached, TPC-H Q16 was 1.13-1.16x slower and Q13
    /// 1.02-1.09x in A/B runs (not profiled).
    pub fn caching_pages(mut self) -> Self {
        self.cache_pages = true;
        self
    }

    /// The block's identity across tables and storages: service, root, path
    /// and size.
    fn key(&mut self) -> &str {
        self.key.get_or_insert_with(|| {
            let info = self.storage.operator().info();
            format!(
                "{}:{}:{}{}:{}",
                info.scheme(),
                info.name(),
                info.root(),
                self.path,
                self.size
            )
        })
    }

    /// Reads `ranges`, the short ones through the page cache.
    async fn read_ranges(&mut self, ranges: Vec<Range<u64>>) -> ParquetResult<Vec<Bytes>> {
        let meta = match (&self.meta, self.cache_pages) {
            (Some(meta), true) => meta.clone(),
            _ => {
                let result = self.inner().await?.get_byte_ranges(ranges).await;
                return result.map_err(|e| self.remap(e));
            }
        };
        let short =
            |r: &Range<u64>| r.end - r.start <= PAGE_CACHE_MAX_READ && is_part_of_a_chunk(&meta, r);
        let key = self.key().to_string();
        let page_key = |r: &Range<u64>| format!("{key}@{}-{}", r.start, r.end);
        let mut found: Vec<Option<Bytes>> = {
            let pages = lock(&PAGES);
            ranges
                .iter()
                .map(|r| short(r).then(|| pages.get(&page_key(r))).flatten())
                .collect()
        };
        let missing: Vec<Range<u64>> = ranges
            .iter()
            .zip(&found)
            .filter(|(_, f)| f.is_none())
            .map(|(r, _)| r.clone())
            .collect();
        if missing.is_empty() {
            return Ok(found.into_iter().flatten().collect());
        }
        let result = self.inner().await?.get_byte_ranges(missing).await;
        let mut fetched = result.map_err(|e| self.remap(e))?.into_iter();
        let mut pages = lock(&PAGES);
        for (slot, range) in found.iter_mut().zip(&ranges) {
            if slot.is_some() {
                continue;
            }
            let Some(bytes) = fetched.next() else {
                return Err(ParquetError::General(format!(
                    "{}: fewer byte ranges read than asked for",
                    self.path
                )));
            };
            if short(range) {
                // Merged reads come back as slices of one buffer: a copy
                // keeps only the page alive.
                let page = Bytes::copy_from_slice(&bytes);
                pages.put(page_key(range), page, bytes.len());
            }
            *slot = Some(bytes);
        }
        Ok(found.into_iter().flatten().collect())
    }

    async fn inner(&mut self) -> ParquetResult<&mut AsyncReader> {
        if self.inner.is_none() {
            let reader = self
                .storage
                .operator()
                .reader_with(&self.path)
                .await
                .map_err(|e| external(self.storage.map_err(e, "read", &self.path)))?;
            self.inner = Some(
                AsyncReader::new(reader, self.size).with_prefetch_footer_size(FOOTER_PREFETCH),
            );
        }
        // Set just above when it was empty.
        self.inner
            .as_mut()
            .ok_or_else(|| ParquetError::General("block reader not initialised".into()))
    }

    /// Replaces an opaque OpenDAL error from the parquet reader with ours.
    fn remap(&self, err: ParquetError) -> ParquetError {
        match err {
            ParquetError::External(source) => match source.downcast::<opendal::Error>() {
                Ok(od) => external(self.storage.map_err(*od, "read", &self.path)),
                Err(other) => ParquetError::External(other),
            },
            other => other,
        }
    }
}

/// Whether `range` lies within one column chunk and is not all of it: the
/// pages the page index narrowed a read to. Whole chunks are a scan's reads,
/// which would only push the pages out.
fn is_part_of_a_chunk(meta: &ParquetMetaData, range: &Range<u64>) -> bool {
    meta.row_groups().iter().flat_map(|g| g.columns()).any(|c| {
        // `byte_range()` without its assertion: a damaged footer is not a panic.
        let start = c.dictionary_page_offset().unwrap_or(c.data_page_offset());
        let (Ok(start), Ok(len)) = (u64::try_from(start), u64::try_from(c.compressed_size()))
        else {
            return false;
        };
        start <= range.start && range.end <= start + len && range.end - range.start < len
    })
}

fn external(err: crate::error::Error) -> ParquetError {
    ParquetError::External(Box::new(err))
}

impl AsyncFileReader for BlockReader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, ParquetResult<Bytes>> {
        async move {
            let mut read = self.read_ranges(vec![range]).await?;
            read.pop()
                .ok_or_else(|| ParquetError::General(format!("{}: nothing read", self.path)))
        }
        .boxed()
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, ParquetResult<Vec<Bytes>>> {
        self.read_ranges(ranges).boxed()
    }

    /// The footer with its page index (whatever `options` ask: the page
    /// index is what prunes a lookup to one page), from the cache when this
    /// block was opened before.
    fn get_metadata<'a>(
        &'a mut self,
        _options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, ParquetResult<Arc<ParquetMetaData>>> {
        async move {
            let key = self.key().to_string();
            if let Some(meta) = lock(&FOOTERS).get(&key) {
                self.meta = Some(meta.clone());
                return Ok(meta);
            }
            let size = self.size;
            let reader = ParquetMetaDataReader::new()
                .with_prefetch_hint(Some(FOOTER_PREFETCH))
                .with_page_index_policy(PageIndexPolicy::Optional);
            let result = reader.load_and_finish(self.inner().await?, size).await;
            let meta = Arc::new(result.map_err(|e| self.remap(e))?);
            lock(&FOOTERS).put(key, meta.clone(), meta.memory_size());
            self.meta = Some(meta.clone());
            Ok(meta)
        }
        .boxed()
    }
}

/// Writes one Parquet block through a multipart-capable OpenDAL writer.
pub struct BlockWriter {
    storage: Storage,
    path: String,
    inner: AsyncWriter,
}

impl BlockWriter {
    pub(super) fn new(storage: Storage, path: String, writer: Writer) -> Self {
        BlockWriter {
            storage,
            path,
            inner: AsyncWriter::new(writer),
        }
    }

    /// Drops what was written so far (a failed statement leaves no partial object).
    pub async fn abort(&mut self) {
        if let Err(e) = self.inner.abort().await {
            tracing::debug!(path = %self.path, error = %e, "aborting a block write failed");
        }
    }

    fn remap(&self, err: ParquetError) -> ParquetError {
        match err {
            ParquetError::External(source) => match source.downcast::<opendal::Error>() {
                Ok(od) => external(self.storage.map_err(*od, "write", &self.path)),
                Err(other) => ParquetError::External(other),
            },
            other => other,
        }
    }
}

impl AsyncFileWriter for BlockWriter {
    fn write(&mut self, bs: Bytes) -> BoxFuture<'_, ParquetResult<()>> {
        async move {
            let result = self.inner.write(bs).await;
            result.map_err(|e| self.remap(e))
        }
        .boxed()
    }

    fn complete(&mut self) -> BoxFuture<'_, ParquetResult<()>> {
        async move {
            let result = self.inner.complete().await;
            result.map_err(|e| self.remap(e))
        }
        .boxed()
    }
}
