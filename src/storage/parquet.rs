//! Parquet IO over OpenDAL: the `AsyncFileReader` / `AsyncFileWriter` that the
//! fuse writer and DataFusion's Parquet scan use, built on `parquet_opendal`.
//!
//! Errors leave here as `ParquetError::External(fusegate Error)`, so the layers
//! above can find the storage cause (a missing object, say) in the chain.
//!
//! Blocks are immutable, so their footers (metadata and page index) are
//! decoded once and kept in a bounded cache: a point lookup then costs the
//! one page it reads, not two or three more round trips and a thrift decode.

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

/// Decoded block footers by object identity (service, root, path, size),
/// oldest evicted first past [`FOOTER_CACHE_BYTES`].
#[derive(Default)]
struct FooterCache {
    map: HashMap<String, Arc<ParquetMetaData>>,
    order: VecDeque<(String, usize)>,
    bytes: usize,
}

static FOOTERS: LazyLock<Mutex<FooterCache>> = LazyLock::new(Default::default);

fn footers() -> std::sync::MutexGuard<'static, FooterCache> {
    FOOTERS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl FooterCache {
    fn put(&mut self, key: String, meta: Arc<ParquetMetaData>) {
        let size = meta.memory_size();
        if size > FOOTER_CACHE_BYTES || self.map.insert(key.clone(), meta).is_some() {
            return;
        }
        self.order.push_back((key, size));
        self.bytes += size;
        while self.bytes > FOOTER_CACHE_BYTES {
            let Some((old, size)) = self.order.pop_front() else {
                break;
            };
            self.map.remove(&old);
            self.bytes -= size;
        }
    }
}

/// Reads one Parquet block. The OpenDAL reader is created on first use, so
/// building a `BlockReader` is free and synchronous.
pub struct BlockReader {
    storage: Storage,
    path: String,
    size: u64,
    inner: Option<AsyncReader>,
}

impl BlockReader {
    pub(super) fn new(storage: Storage, path: String, size: u64) -> Self {
        BlockReader {
            storage,
            path,
            size,
            inner: None,
        }
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

fn external(err: crate::error::Error) -> ParquetError {
    ParquetError::External(Box::new(err))
}

impl AsyncFileReader for BlockReader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, ParquetResult<Bytes>> {
        async move {
            let result = self.inner().await?.get_bytes(range).await;
            result.map_err(|e| self.remap(e))
        }
        .boxed()
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, ParquetResult<Vec<Bytes>>> {
        async move {
            let result = self.inner().await?.get_byte_ranges(ranges).await;
            result.map_err(|e| self.remap(e))
        }
        .boxed()
    }

    /// The footer with its page index (whatever `options` ask: the page
    /// index is what prunes a lookup to one page), from the cache when this
    /// block was opened before.
    fn get_metadata<'a>(
        &'a mut self,
        _options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, ParquetResult<Arc<ParquetMetaData>>> {
        async move {
            let info = self.storage.operator().info();
            let key = format!(
                "{}:{}:{}{}:{}",
                info.scheme(),
                info.name(),
                info.root(),
                self.path,
                self.size
            );
            if let Some(meta) = footers().map.get(&key) {
                return Ok(meta.clone());
            }
            let size = self.size;
            let reader = ParquetMetaDataReader::new()
                .with_prefetch_hint(Some(FOOTER_PREFETCH))
                .with_page_index_policy(PageIndexPolicy::Optional);
            let result = reader.load_and_finish(self.inner().await?, size).await;
            let meta = Arc::new(result.map_err(|e| self.remap(e))?);
            footers().put(key, meta.clone());
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
