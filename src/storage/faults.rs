//! Storage fault injection for tests (`--inject-storage-faults`).
//!
//! OpenDAL's chaos layer fails reads only. [`FaultLayer`] fails the rest of
//! what fusegate asks of a store — writes, lists, deletes, stats and
//! restores — with the same temporary errors a flaky network gives, and it
//! sits below the retry layer, so each fault is retried exactly as a real one
//! would be. Two kinds of fault are injected, half of each:
//!
//! - *lost request*: the operation fails before it reaches the store, which
//!   is left unchanged;
//! - *lost answer* (writes and restores): the store did the work, but the
//!   caller is told it failed. A retried write sends the whole object again,
//!   as a retried PUT would, so a conditional write then finds its own object
//!   in place. Commits must recognise that case (see `Catalog::try_commit`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use opendal::raw::*;
use opendal::{Buffer, Capability, Error, ErrorKind, Metadata, OperationContext, Result};

/// How often each kind of storage operation fails, each from 0 to 1: the
/// value of `--inject-storage-faults`, either one ratio for all (`0.3`) or
/// per kind (`restore=0.6,read=0.1`; kinds not named never fail).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FaultRatios {
    pub read: f64,
    pub write: f64,
    pub list: f64,
    pub delete: f64,
    pub stat: f64,
    pub restore: f64,
}

impl FaultRatios {
    pub fn any(&self) -> bool {
        [
            self.read,
            self.write,
            self.list,
            self.delete,
            self.stat,
            self.restore,
        ]
        .iter()
        .any(|r| *r > 0.0)
    }
}

impl std::str::FromStr for FaultRatios {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<FaultRatios, String> {
        let ratio = |v: &str| match v.trim().parse::<f64>() {
            Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
            _ => Err(format!("{v:?} is not a ratio from 0 to 1")),
        };
        if !s.contains('=') {
            let r = ratio(s)?;
            return Ok(FaultRatios {
                read: r,
                write: r,
                list: r,
                delete: r,
                stat: r,
                restore: r,
            });
        }
        let mut ratios = FaultRatios::default();
        for part in s.split(',') {
            let (kind, value) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?} is not KIND=RATIO"))?;
            let slot = match kind.trim() {
                "read" => &mut ratios.read,
                "write" => &mut ratios.write,
                "list" => &mut ratios.list,
                "delete" => &mut ratios.delete,
                "stat" => &mut ratios.stat,
                "restore" => &mut ratios.restore,
                other => {
                    return Err(format!(
                        "unknown operation {other:?}: use read, write, list, delete, stat or restore"
                    ));
                }
            };
            *slot = ratio(value)?;
        }
        Ok(ratios)
    }
}

/// Fails operations at the given ratios (see the module docs).
#[derive(Debug, Clone)]
pub struct FaultLayer {
    dice: Arc<Dice>,
}

impl FaultLayer {
    pub fn new(ratios: FaultRatios) -> FaultLayer {
        FaultLayer {
            dice: Arc::new(Dice { ratios }),
        }
    }
}

impl Layer for FaultLayer {
    fn apply_service(&self, inner: Servicer) -> Servicer {
        Arc::new(FaultService {
            inner,
            dice: self.dice.clone(),
        })
    }
}

/// What a roll decides for one operation.
#[derive(Debug, PartialEq)]
enum Fault {
    None,
    LostRequest,
    LostAnswer,
}

/// A lock-free random source (splitmix64) shared by every storage of the
/// process: a storage opened again (a retried startup, a new table) must not
/// replay the rolls of the last one. Lock-free, so that fault injection does
/// not serialise the operations it is testing.
#[derive(Debug)]
struct Dice {
    ratios: FaultRatios,
}

static DICE_STATE: AtomicU64 = AtomicU64::new(0);

impl Dice {
    fn roll(&self, ratio: f64) -> Fault {
        let mut z = DICE_STATE
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(u64::from(std::process::id()) << 32);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        // 53 random bits as a number in [0, 1).
        let x = (z >> 11) as f64 / (1u64 << 53) as f64;
        if x >= ratio {
            Fault::None
        } else if x < ratio / 2.0 {
            Fault::LostRequest
        } else {
            Fault::LostAnswer
        }
    }

    /// For operations that are safe to repeat blindly (stat, list, delete),
    /// where a lost answer is no different from a lost request.
    fn fails_before(&self, ratio: f64) -> bool {
        self.roll(ratio) != Fault::None
    }
}

fn injected(operation: &'static str, kind: &'static str) -> Error {
    Error::new(ErrorKind::Unexpected, format!("injected fault: {kind}"))
        .with_operation(operation)
        .set_temporary()
}

#[derive(Debug)]
pub struct FaultService {
    inner: Servicer,
    dice: Arc<Dice>,
}

impl Service for FaultService {
    type Reader = oio::Reader;
    type Writer = FaultWriter;
    type Lister = FaultLister;
    type Deleter = FaultDeleter;
    type Copier = oio::Copier;
    type Composer = oio::Composer;

    fn info(&self) -> ServiceInfo {
        self.inner.info()
    }

    fn capability(&self) -> Capability {
        let mut capability = self.inner.capability();
        // Server-side copies into a writer would bypass the re-send below.
        capability.write_can_copy_from = false;
        capability
    }

    fn compose(&self, ctx: &OperationContext, to: &str, args: OpCompose) -> Result<Self::Composer> {
        self.inner.compose(ctx, to, args)
    }

    async fn create_dir(
        &self,
        ctx: &OperationContext,
        path: &str,
        args: OpCreateDir,
    ) -> Result<RpCreateDir> {
        self.inner.create_dir(ctx, path, args).await
    }

    async fn stat(&self, ctx: &OperationContext, path: &str, args: OpStat) -> Result<RpStat> {
        if self.dice.fails_before(self.dice.ratios.stat) {
            return Err(injected("stat", "lost request"));
        }
        self.inner.stat(ctx, path, args).await
    }

    fn read(&self, ctx: &OperationContext, path: &str, args: OpRead) -> Result<Self::Reader> {
        // Reads are failed by OpenDAL's chaos layer, stacked below this one.
        self.inner.read(ctx, path, args)
    }

    fn write(&self, ctx: &OperationContext, path: &str, args: OpWrite) -> Result<Self::Writer> {
        let writer = self.inner.write(ctx, path, args.clone())?;
        Ok(FaultWriter {
            inner: writer,
            service: self.inner.clone(),
            ctx: ctx.clone(),
            path: path.to_string(),
            args,
            sent: Vec::new(),
            answered: None,
            dice: self.dice.clone(),
        })
    }

    fn copy(
        &self,
        ctx: &OperationContext,
        from: &str,
        to: &str,
        args: OpCopy,
    ) -> Result<Self::Copier> {
        self.inner.copy(ctx, from, to, args)
    }

    fn list(&self, ctx: &OperationContext, path: &str, args: OpList) -> Result<Self::Lister> {
        Ok(FaultLister {
            inner: self.inner.list(ctx, path, args)?,
            listed: 0,
            dice: self.dice.clone(),
        })
    }

    fn delete(&self, ctx: &OperationContext) -> Result<Self::Deleter> {
        Ok(FaultDeleter {
            inner: self.inner.delete(ctx)?,
            dice: self.dice.clone(),
        })
    }

    async fn rename(
        &self,
        ctx: &OperationContext,
        from: &str,
        to: &str,
        args: OpRename,
    ) -> Result<RpRename> {
        self.inner.rename(ctx, from, to, args).await
    }

    async fn restore(
        &self,
        ctx: &OperationContext,
        path: &str,
        args: OpRestore,
    ) -> Result<RpRestore> {
        match self.dice.roll(self.dice.ratios.restore) {
            Fault::None => self.inner.restore(ctx, path, args).await,
            Fault::LostRequest => Err(injected("restore", "lost request")),
            Fault::LostAnswer => {
                self.inner.restore(ctx, path, args).await?;
                Err(injected("restore", "lost answer"))
            }
        }
    }

    async fn presign(
        &self,
        ctx: &OperationContext,
        path: &str,
        args: OpPresign,
    ) -> Result<RpPresign> {
        self.inner.presign(ctx, path, args).await
    }
}

/// Writes pass through; the fault is injected when the object is committed
/// (`close`, where an S3 PUT happens). The bytes are kept so that a close
/// retried after a lost answer can send the object again.
pub struct FaultWriter {
    inner: oio::Writer,
    service: Servicer,
    ctx: OperationContext,
    path: String,
    args: OpWrite,
    sent: Vec<Buffer>,
    /// Set once the store has the object but the caller was told otherwise.
    answered: Option<Metadata>,
    dice: Arc<Dice>,
}

impl oio::Write for FaultWriter {
    async fn write(&mut self, bs: Buffer) -> Result<()> {
        self.sent.push(bs.clone());
        self.inner.write(bs).await
    }

    async fn close(&mut self) -> Result<Metadata> {
        if self.answered.take().is_some() {
            // The retry of a write whose answer was lost: the whole request again.
            let mut again = self
                .service
                .write(&self.ctx, &self.path, self.args.clone())?;
            for bs in &self.sent {
                again.write(bs.clone()).await?;
            }
            return again.close().await;
        }
        match self.dice.roll(self.dice.ratios.write) {
            Fault::None => self.inner.close().await,
            Fault::LostRequest => Err(injected("write", "lost request")),
            Fault::LostAnswer => {
                self.answered = Some(self.inner.close().await?);
                Err(injected("write", "lost answer"))
            }
        }
    }

    async fn abort(&mut self) -> Result<()> {
        self.inner.abort().await
    }
}

/// Entries a listing request returns at most (S3's page size).
const LIST_PAGE: u64 = 1000;

/// Each page of a listing may fail; the listing is retried from where it was.
/// OpenDAL's lister yields entries one by one and hides its requests, so a
/// page is taken to begin every [`LIST_PAGE`] entries.
pub struct FaultLister {
    inner: oio::Lister,
    listed: u64,
    dice: Arc<Dice>,
}

impl oio::List for FaultLister {
    async fn next(&mut self) -> Result<Option<oio::Entry>> {
        if self.listed.is_multiple_of(LIST_PAGE) && self.dice.fails_before(self.dice.ratios.list) {
            return Err(injected("list", "lost request"));
        }
        let entry = self.inner.next().await?;
        self.listed += 1;
        Ok(entry)
    }
}

/// Deletes are queued by the deleter and sent at close, where they may fail.
pub struct FaultDeleter {
    inner: oio::Deleter,
    dice: Arc<Dice>,
}

impl oio::Delete for FaultDeleter {
    async fn delete(&mut self, path: &str, args: OpDelete) -> Result<()> {
        self.inner.delete(path, args).await
    }

    async fn close(&mut self) -> Result<()> {
        if self.dice.fails_before(self.dice.ratios.delete) {
            return Err(injected("delete", "lost request"));
        }
        self.inner.close().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dice_fail_about_the_ratio_half_before_half_after() {
        let layer = FaultLayer::new("0.3".parse().unwrap());
        let (mut before, mut after) = (0, 0);
        for _ in 0..100_000 {
            match layer.dice.roll(layer.dice.ratios.stat) {
                Fault::None => {}
                Fault::LostRequest => before += 1,
                Fault::LostAnswer => after += 1,
            }
        }
        assert!((14_000..16_000).contains(&before), "{before}");
        assert!((14_000..16_000).contains(&after), "{after}");
    }

    #[test]
    fn ratios_are_one_for_all_or_per_operation() {
        let all: FaultRatios = "0.25".parse().unwrap();
        assert_eq!((all.read, all.restore), (0.25, 0.25));
        let some: FaultRatios = "restore=0.6, read=0.1".parse().unwrap();
        assert_eq!(
            some,
            FaultRatios {
                read: 0.1,
                restore: 0.6,
                ..FaultRatios::default()
            }
        );
        assert!(!"0".parse::<FaultRatios>().unwrap().any());
        for bad in ["1.5", "reads=0.1", "write", "list=x", "-0.1"] {
            assert!(bad.parse::<FaultRatios>().is_err(), "{bad}");
        }
    }
}
