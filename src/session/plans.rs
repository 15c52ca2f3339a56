//! Plans a session reuses: a prepared statement's, and those of read-only
//! queries it ran before whose text comes again.
//!
//! Planning was most of a small query's time: a selective range query spent
//! 3.1 of its 4.5 ms in DataFusion's planner and optimizers. Drivers send the
//! same text again and again (dashboards refresh, psycopg and JDBC send an
//! unnamed statement per execution until they decide to prepare), so a
//! session keeps the plans of its recent read-only queries by their text.
//! A plan found there is a prepared statement's in all but name: it is
//! reused while what it was made against still holds ([`PlanBasis`]), and
//! its physical plan is kept from its second execution (`query::kept`).

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::fuse::txn::Transaction;
use crate::query::QueryPlan;

/// What a plan's tables and names resolved against. A plan is reused while
/// this still holds.
#[derive(Clone)]
pub(super) struct PlanBasis {
    pub catalog_version: u64,
    /// The transaction it was planned in: a write resolves its table through it.
    pub txn: Option<Arc<Transaction>>,
    /// That transaction's working snapshots, which its tables read instead of
    /// the catalog's.
    pub working: Vec<(u64, String)>,
    /// The database unqualified names resolved in (USE).
    pub database: String,
    /// The session's settings when it was planned, hashed: they are handed
    /// to DataFusion before planning, so any of them may shape a plan, and a
    /// SET costs no more than one new plan.
    pub settings: u64,
}

impl PlanBasis {
    /// Whether `plan`, made against `self`, reads and writes as a new plan
    /// made against `now` would. A read-only plan depends only on what its
    /// tables resolved to, so it outlives the implicit transaction of the
    /// Execute that made it; a write must go through the same transaction.
    pub fn still_holds(&self, now: &PlanBasis, plan: &QueryPlan) -> bool {
        let same_txn = match (&self.txn, &now.txn) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        self.catalog_version == now.catalog_version
            && self.working == now.working
            && self.database == now.database
            && self.settings == now.settings
            && (same_txn || plan.is_read_only())
    }
}

/// A hash of a session's settings, for [`PlanBasis::settings`].
pub(super) fn settings_hash(values: &BTreeMap<String, String>) -> u64 {
    let mut hasher = DefaultHasher::new();
    values.hash(&mut hasher);
    hasher.finish()
}

/// How many read-only queries' plans a session keeps.
const RECENT_PLANS: usize = 64;

/// The plans of a session's recent read-only queries, by their text.
#[derive(Default)]
pub(super) struct RecentPlans {
    plans: HashMap<String, (QueryPlan, PlanBasis)>,
    /// Texts, oldest first: the oldest goes when the map is full.
    order: VecDeque<String>,
}

impl RecentPlans {
    /// The plan kept for `text`, if it still holds against `now`.
    pub fn get(&self, text: &str, now: &PlanBasis) -> Option<QueryPlan> {
        let (plan, basis) = self.plans.get(text)?;
        basis.still_holds(now, plan).then(|| plan.clone())
    }

    /// Keeps `plan` for `text` if it only reads, and only fuse tables (see
    /// [`QueryPlan::reads_only_fuse_tables`]). Its clones share the physical
    /// plan kept across executions.
    pub fn keep(&mut self, text: String, plan: &QueryPlan, basis: &PlanBasis) {
        if !plan.is_read_only() || plan.is_explain() || !plan.reads_only_fuse_tables() {
            return;
        }
        if self.plans.contains_key(&text) {
            self.order.retain(|t| t != &text);
        } else if self.plans.len() >= RECENT_PLANS
            && let Some(oldest) = self.order.pop_front()
        {
            self.plans.remove(&oldest);
        }
        self.order.push_back(text.clone());
        self.plans.insert(text, (plan.clone(), basis.clone()));
    }
}
