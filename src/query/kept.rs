//! Physical plans kept across the executions of a prepared statement.
//!
//! A prepared point lookup spent most of its CPU on planning: binding the
//! parameters into the logical plan, optimizing it, building and optimizing
//! the physical plan — on every Execute. DataFusion has placeholders only in
//! logical plans, so a kept plan stands each `$n` in with a function
//! ([`ParamUdf`]) that returns the value bound for the current execution;
//! inside a fuse scan's predicate it becomes a [`ParamExpr`], whose
//! `snapshot` is that value as a literal. DataFusion's Parquet opener
//! snapshots the predicate before it prunes, so blocks (by the statistics
//! each scan file carries), row groups and pages are still pruned with the
//! parameters' values — at execution instead of at planning, as Databend
//! prunes prepared point queries.
//!
//! Only plans whose operators are known to run again after a reset are kept
//! (scans, filters, projections, limits, sorts, aggregates over fuse tables);
//! joins, repartitioning, subqueries and dynamic filters plan every time, as
//! do plans with functions that are not immutable (`now()` is folded into
//! the plan when it is optimized).

use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Schema};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::error::{DataFusionError, Result as DFResult};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{
    ColumnarValue, Expr, LogicalPlan, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion::physical_expr::expressions::{DynamicFilterPhysicalExpr, Literal};
use datafusion::physical_expr::{PhysicalExpr, ScalarFunctionExpr};
use datafusion::physical_plan::ExecutionPlan;

/// The values of `$1..$n` for the execution under way, and whether one is.
#[derive(Debug, Default)]
pub struct ParamSlot {
    values: RwLock<Vec<ScalarValue>>,
    busy: AtomicBool,
}

impl ParamSlot {
    fn value(&self, index: usize) -> Option<ScalarValue> {
        self.values.read().ok()?.get(index).cloned()
    }

    /// Binds `values` for one execution; `None` while another execution of
    /// the plan still streams (a suspended portal of the same statement).
    fn bind(self: &Arc<Self>, values: Vec<ScalarValue>) -> Option<Bound> {
        if self.busy.swap(true, Ordering::AcqRel) {
            return None;
        }
        match self.values.write() {
            Ok(mut v) => *v = values,
            Err(_) => {
                self.busy.store(false, Ordering::Release);
                return None;
            }
        }
        Some(Bound(self.clone()))
    }
}

/// Held by an execution's stream: the slot is free again when it is dropped.
#[derive(Debug)]
pub struct Bound(Arc<ParamSlot>);

impl Drop for Bound {
    fn drop(&mut self) {
        self.0.busy.store(false, Ordering::Release);
    }
}

/// `$n` of a kept plan: its slot, position and type. Two are the same
/// parameter when they read the same position of the same slot.
#[derive(Debug, Clone)]
struct Param {
    slot: Arc<ParamSlot>,
    index: usize,
    data_type: DataType,
}

impl Param {
    fn value(&self) -> DFResult<ScalarValue> {
        self.slot.value(self.index).ok_or_else(|| {
            DataFusionError::Internal(format!("parameter ${} has no value bound", self.index + 1))
        })
    }
}

impl PartialEq for Param {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.slot, &other.slot) && self.index == other.index
    }
}
impl Eq for Param {}
impl Hash for Param {
    fn hash<H: Hasher>(&self, state: &mut H) {
        Arc::as_ptr(&self.slot).hash(state);
        self.index.hash(state);
    }
}

/// `$n` in a kept logical plan: a function returning the bound value.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ParamUdf {
    param: Param,
    signature: Signature,
}

impl ScalarUDFImpl for ParamUdf {
    fn name(&self) -> &str {
        "fusegate_param"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> DFResult<DataType> {
        Ok(self.param.data_type.clone())
    }
    fn invoke_with_args(&self, _: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        self.param.value().map(ColumnarValue::Scalar)
    }
}

/// `$n` in a scan's predicate: evaluates to the bound value, and snapshots
/// to it as a literal, so pruning sees the value of this execution.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ParamExpr(Param);

impl fmt::Display for ParamExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "${}", self.0.index + 1)
    }
}

impl PhysicalExpr for ParamExpr {
    fn data_type(&self, _: &Schema) -> DFResult<DataType> {
        Ok(self.0.data_type.clone())
    }
    fn nullable(&self, _: &Schema) -> DFResult<bool> {
        Ok(true)
    }
    fn evaluate(&self, _: &RecordBatch) -> DFResult<ColumnarValue> {
        self.0.value().map(ColumnarValue::Scalar)
    }
    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        Vec::new()
    }
    fn with_new_children(
        self: Arc<Self>,
        _: Vec<Arc<dyn PhysicalExpr>>,
    ) -> DFResult<Arc<dyn PhysicalExpr>> {
        Ok(self)
    }
    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
    fn snapshot(&self) -> DFResult<Option<Arc<dyn PhysicalExpr>>> {
        // Unbound (while the kept plan is being made): no value to prune with,
        // so nothing is pruned at planning.
        Ok(self
            .0
            .slot
            .value(self.0.index)
            .map(|v| Arc::new(Literal::new(v)) as Arc<dyn PhysicalExpr>))
    }
}

/// Turns the parameters of a scan's physical predicate into [`ParamExpr`]s.
pub fn param_exprs(predicate: Arc<dyn PhysicalExpr>) -> DFResult<Arc<dyn PhysicalExpr>> {
    predicate
        .transform_up(|e| {
            let param = e
                .downcast_ref::<ScalarFunctionExpr>()
                .and_then(|f| f.fun().inner().downcast_ref::<ParamUdf>());
            Ok(match param {
                Some(udf) => {
                    Transformed::yes(Arc::new(ParamExpr(udf.param.clone())) as Arc<dyn PhysicalExpr>)
                }
                None => Transformed::no(e),
            })
        })
        .map(|t| t.data)
}

/// Whether `plan` may be made once and kept: nothing in it is evaluated at
/// planning that could differ between executions.
pub fn may_keep(plan: &LogicalPlan) -> bool {
    let mut ok = true;
    let _ = plan.apply_with_subqueries(|node| {
        if matches!(
            node,
            LogicalPlan::Dml(_)
                | LogicalPlan::Ddl(_)
                | LogicalPlan::Explain(_)
                | LogicalPlan::Analyze(_)
                | LogicalPlan::Statement(_)
                | LogicalPlan::Extension(_)
        ) {
            ok = false;
            return Ok(TreeNodeRecursion::Stop);
        }
        node.apply_expressions(|e| {
            let varies = e.exists(|e| {
                Ok(match e {
                    Expr::ScalarFunction(f) => {
                        f.func.signature().volatility != Volatility::Immutable
                    }
                    Expr::ScalarVariable(..) => true,
                    _ => false,
                })
            })?;
            ok &= !varies;
            Ok(if varies {
                TreeNodeRecursion::Stop
            } else {
                TreeNodeRecursion::Continue
            })
        })
    });
    ok
}

/// Replaces the placeholders of an optimized plan by [`ParamUdf`] calls on
/// `slot`; `None` when a placeholder's type is unknown. Also returns the
/// parameters' types, in order.
pub fn bind_params(
    plan: LogicalPlan,
    slot: &Arc<ParamSlot>,
) -> DFResult<Option<(LogicalPlan, Vec<DataType>)>> {
    let mut types: Vec<Option<DataType>> = Vec::new();
    let mut untyped = false;
    let bound = plan
        .transform_up_with_subqueries(|node| {
            let names = NamePreserver::new(&node);
            node.map_expressions(|e| {
                let name = names.save(&e);
                let t = e.transform_up(|e| {
                    let Expr::Placeholder(p) = &e else {
                        return Ok(Transformed::no(e));
                    };
                    let index =
                        p.id.strip_prefix('$')
                            .and_then(|n| n.parse::<usize>().ok())
                            .and_then(|n| n.checked_sub(1));
                    let (Some(index), Some(field)) = (index, &p.field) else {
                        untyped = true;
                        return Ok(Transformed::no(e));
                    };
                    let data_type = field.data_type().clone();
                    if types.len() <= index {
                        types.resize(index + 1, None);
                    }
                    types[index] = Some(data_type.clone());
                    let udf = ScalarUDF::new_from_impl(ParamUdf {
                        param: Param {
                            slot: slot.clone(),
                            index,
                            data_type,
                        },
                        signature: Signature::nullary(Volatility::Volatile),
                    });
                    Ok(Transformed::yes(Expr::ScalarFunction(
                        ScalarFunction::new_udf(Arc::new(udf), Vec::new()),
                    )))
                })?;
                Ok(t.update_data(|e| name.restore(e)))
            })
        })?
        .data;
    if untyped || types.iter().any(Option::is_none) {
        return Ok(None);
    }
    Ok(Some((bound, types.into_iter().flatten().collect())))
}

/// Whether `expr` holds a parameter with no value bound yet: a kept plan
/// being made, whose blocks are pruned when it runs.
pub fn has_unbound_param(expr: &Arc<dyn PhysicalExpr>) -> bool {
    expr.exists(|e| {
        Ok(e.downcast_ref::<ParamExpr>()
            .is_some_and(|p| p.0.slot.value(p.0.index).is_none()))
    })
    .unwrap_or(false)
}

/// Whether a physical plan runs again correctly after `reset_plan_states`:
/// only operators without state shared between executions, over fuse scans
/// whose predicates hold no dynamic filter (those are updated while a join or
/// top-k runs and would carry one execution's bounds into the next).
pub fn may_rerun(plan: &Arc<dyn ExecutionPlan>) -> bool {
    use datafusion::datasource::physical_plan::{FileSource, ParquetSource};
    use datafusion::datasource::source::DataSourceExec;
    use datafusion::physical_plan::aggregates::AggregateExec;
    use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
    use datafusion::physical_plan::coop::CooperativeExec;
    use datafusion::physical_plan::empty::EmptyExec;
    use datafusion::physical_plan::filter::FilterExec;
    use datafusion::physical_plan::limit::{GlobalLimitExec, LocalLimitExec};
    use datafusion::physical_plan::projection::ProjectionExec;
    use datafusion::physical_plan::sorts::sort::SortExec;
    use datafusion::physical_plan::sorts::sort_preserving_merge::SortPreservingMergeExec;

    let misfit = plan.exists(|node| {
        let fits = if let Some(scan) = node.downcast_ref::<DataSourceExec>() {
            match scan.downcast_to_file_source::<ParquetSource>() {
                Some((_, source)) => !source.filter().is_some_and(|p| has_dynamic_filter(&p)),
                None => false,
            }
        } else if let Some(sort) = node.downcast_ref::<SortExec>() {
            // A sort with a fetch is a top-k, which feeds a dynamic filter.
            sort.fetch().is_none()
        } else if let Some(filter) = node.downcast_ref::<FilterExec>() {
            !has_dynamic_filter(filter.predicate())
        } else {
            node.is::<ProjectionExec>()
                || node.is::<CoalescePartitionsExec>()
                || node.is::<GlobalLimitExec>()
                || node.is::<LocalLimitExec>()
                || node.is::<CooperativeExec>()
                || node.is::<SortPreservingMergeExec>()
                || node.is::<AggregateExec>()
                || node.is::<EmptyExec>()
        };
        Ok(!fits)
    });
    matches!(misfit, Ok(false))
}

fn has_dynamic_filter(expr: &Arc<dyn PhysicalExpr>) -> bool {
    expr.exists(|e| Ok(e.is::<DynamicFilterPhysicalExpr>()))
        .unwrap_or(true)
}

/// How many narrowed forms of one kept plan are kept (see [`KeptPlan`]).
const NARROWED_PLANS: usize = 64;

/// A physical plan made once for a prepared statement.
#[derive(Debug)]
pub struct KeptPlan {
    pub plan: Arc<dyn ExecutionPlan>,
    slot: Arc<ParamSlot>,
    types: Vec<DataType>,
    /// Its scans, which tell how many blocks an execution reads.
    scans: Vec<super::ScanReport>,
    /// The plan with its scans narrowed to a set of surviving blocks, by
    /// that set: rebuilding the operators above a narrowed scan (their
    /// properties and equivalences computed anew) was 7 % of a lookup's CPU,
    /// and lookups keep hitting the same few blocks.
    narrowed: Mutex<HashMap<super::scan::Survivors, Arc<dyn ExecutionPlan>>>,
}

impl KeptPlan {
    pub fn new(
        plan: Arc<dyn ExecutionPlan>,
        slot: Arc<ParamSlot>,
        types: Vec<DataType>,
        scans: Vec<super::ScanReport>,
    ) -> KeptPlan {
        KeptPlan {
            plan,
            slot,
            types,
            scans,
            narrowed: Mutex::default(),
        }
    }

    /// The plan to run with the values bound now, and the blocks it reads:
    /// each scan narrowed to the blocks these values may match, and the
    /// scans' shared work queues made anew (`reset_plan_states`).
    pub fn for_execution(&self) -> DFResult<(Arc<dyn ExecutionPlan>, usize)> {
        use super::scan::{kept_survivors, narrow_kept_scans};
        let (survivors, read) = kept_survivors(&self.scans);
        let cached = self
            .narrowed
            .lock()
            .ok()
            .and_then(|n| n.get(&survivors).cloned());
        let plan = match cached {
            Some(plan) => plan,
            None => {
                let plan = narrow_kept_scans(self.plan.clone(), &self.scans, &survivors)?;
                if let Ok(mut narrowed) = self.narrowed.lock() {
                    if narrowed.len() >= NARROWED_PLANS {
                        // Lookups spread over many blocks: any entry goes.
                        if let Some(old) = narrowed.keys().next().cloned() {
                            narrowed.remove(&old);
                        }
                    }
                    narrowed.insert(survivors, plan.clone());
                }
                plan
            }
        };
        let plan = datafusion::physical_plan::execution_plan::reset_plan_states(plan)?;
        Ok((plan, read))
    }

    /// Binds `params` for one execution. `None` when they do not fit the
    /// plan's types (the statement then plans as usual, which gives the
    /// error or the coercion a new plan would) or the plan is still running.
    pub fn bind(&self, params: Option<&ParamValues>) -> Option<Bound> {
        let values = match params {
            None => Vec::new(),
            Some(ParamValues::List(list)) => list
                .iter()
                .map(|v| v.value.clone())
                .collect::<Vec<ScalarValue>>(),
            Some(ParamValues::Map(_)) => return None,
        };
        if values.len() != self.types.len() {
            return None;
        }
        let values = values
            .into_iter()
            .zip(&self.types)
            .map(|(v, t)| same_value_as(v, t))
            .collect::<Option<Vec<_>>>()?;
        self.slot.bind(values)
    }
}

/// `v` as a value of `t`, where that is what a new plan would compare: the
/// same type, or an integer or string of another width (a client binds
/// `int4` where the column is `int8`). Other pairs — a float for an integer
/// compares as a float in a new plan — are left to planning.
fn same_value_as(v: ScalarValue, t: &DataType) -> Option<ScalarValue> {
    let from = v.data_type();
    if from == *t {
        return Some(v);
    }
    let both = |f: fn(&DataType) -> bool| f(&from) && f(t);
    let string =
        |d: &DataType| matches!(d, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View);
    if both(DataType::is_integer) || both(string) {
        // Fails (and plans as usual) where the value does not fit.
        return v.cast_to(t).ok();
    }
    None
}

/// What a plan's physical form is, across its executions.
#[derive(Debug, Default)]
pub enum Kept {
    /// Not executed yet: the first execution plans as usual, since most
    /// statements of the extended protocol run once (drivers' unnamed ones).
    #[default]
    New,
    /// Executed once: the second execution tries to make the plan to keep.
    Untried,
    /// The plan cannot be kept; every execution plans.
    No,
    Ready(Arc<KeptPlan>),
}

/// Shared by the clones of one prepared statement's plan.
pub type KeptSlot = Arc<Mutex<Kept>>;

#[cfg(test)]
mod tests {
    use arrow::datatypes::Field;
    use datafusion::logical_expr::{LogicalPlanBuilder, col, lit, placeholder};

    use super::*;

    fn scan() -> LogicalPlanBuilder {
        let schema = Schema::new(vec![Field::new("k", DataType::Int64, false)]);
        let table = datafusion::logical_expr::logical_plan::table_scan(Some("t"), &schema, None);
        table.expect("a table scan")
    }

    #[test]
    fn a_bound_value_takes_the_parameters_type_only_where_a_plan_would() {
        let as_int8 = same_value_as(ScalarValue::Int32(Some(7)), &DataType::Int64);
        assert_eq!(as_int8, Some(ScalarValue::Int64(Some(7))));
        // Too large for the column's type: planned as usual, which refuses it.
        assert_eq!(
            same_value_as(ScalarValue::Int64(Some(1 << 40)), &DataType::Int32),
            None
        );
        // A float compares as a float in a new plan, not as a truncated integer.
        assert_eq!(
            same_value_as(ScalarValue::Float64(Some(1.5)), &DataType::Int64),
            None
        );
        let text = same_value_as(ScalarValue::Utf8(Some("a".into())), &DataType::Utf8View);
        assert_eq!(text, Some(ScalarValue::Utf8View(Some("a".into()))));
    }

    #[test]
    fn parameters_become_bound_values_and_untyped_ones_are_refused() {
        let slot = Arc::new(ParamSlot::default());
        let typed = scan()
            .filter(col("k").eq(datafusion::logical_expr::Expr::Placeholder(
                datafusion::logical_expr::expr::Placeholder::new_with_field(
                    "$1".into(),
                    Some(Arc::new(Field::new("", DataType::Int64, true))),
                ),
            )))
            .and_then(|b| b.build())
            .expect("a plan");
        let (bound, types) = bind_params(typed, &slot)
            .expect("no error")
            .expect("typed parameters bind");
        assert_eq!(types, vec![DataType::Int64]);
        let mut params = 0;
        let _ = bound.apply_expressions(|e| {
            e.apply(|e| {
                params += usize::from(
                    matches!(e, Expr::ScalarFunction(f) if f.func.inner().is::<ParamUdf>()),
                );
                assert!(!matches!(e, Expr::Placeholder(_)));
                Ok(TreeNodeRecursion::Continue)
            })
        });
        assert_eq!(params, 1);

        let untyped = scan()
            .filter(col("k").eq(placeholder("$1")))
            .and_then(|b| b.build())
            .expect("a plan");
        assert!(bind_params(untyped, &slot).expect("no error").is_none());
    }

    #[test]
    fn plans_reading_the_clock_are_not_kept() {
        let plain = scan().filter(col("k").eq(lit(1))).and_then(|b| b.build());
        assert!(may_keep(&plain.expect("a plan")));
        let clock = scan()
            .project(vec![datafusion::functions::datetime::expr_fn::now()])
            .and_then(|b| b.build());
        assert!(!may_keep(&clock.expect("a plan")));
    }

    #[test]
    fn a_slot_binds_once_until_its_execution_ends() {
        let slot = Arc::new(ParamSlot::default());
        let first = slot.bind(vec![ScalarValue::Int64(Some(1))]);
        assert!(first.is_some());
        assert!(slot.bind(vec![ScalarValue::Int64(Some(2))]).is_none());
        assert_eq!(slot.value(0), Some(ScalarValue::Int64(Some(1))));
        drop(first);
        assert!(slot.bind(vec![ScalarValue::Int64(Some(2))]).is_some());
    }
}
