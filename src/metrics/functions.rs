//! The metrics as SQL table functions, defined by the same `sql/` files as `dau query`:
//! `SELECT * FROM mau('2024-06-01', '2024-06-30') WHERE mau > 1000`, and with a third argument
//! `'calendar'` for ISO weeks (wau) and calendar months (mau).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::NaiveDate;
use clap::ValueEnum;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::prelude::SessionContext;

use super::{Metric, Query, bitmap, output_schema, plan};
use crate::Error;
use crate::config::Config;
use crate::dates::{parse_day, today};
use crate::lake::Lake;

/// Registers a table function per metric (`user-days` as `user_days`).
pub fn register(ctx: &SessionContext, lake: Arc<Lake>, config: &Config, events: SchemaRef) {
    for metric in Metric::value_variants() {
        let function = MetricFunction {
            metric: *metric,
            lake: lake.clone(),
            config: config.clone(),
            events: events.clone(),
        };
        ctx.register_udtf(&metric.name().replace('-', "_"), Arc::new(function));
    }
}

#[derive(Debug)]
struct MetricFunction {
    metric: Metric,
    lake: Arc<Lake>,
    config: Config,
    /// The `events` table's schema, which decides the output's id type (user_days).
    events: SchemaRef,
}

impl MetricFunction {
    fn day(&self, expr: &Expr, which: &str) -> DfResult<NaiveDate> {
        let text = match expr {
            Expr::Literal(ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s)), _) => {
                s.clone()
            }
            Expr::Literal(value @ ScalarValue::Date32(Some(_)), _) => value.to_string(),
            _ => {
                return Err(self.usage(&format!(
                    "the {which} day must be a literal such as '2024-06-01'"
                )));
            }
        };
        parse_day(&text, today(self.config.timezone)).ok_or_else(|| {
            self.usage(&format!(
                "bad {which} day '{text}': {}",
                crate::dates::ACCEPTED
            ))
        })
    }

    /// A usage error (exit 2, as for a flag), in SQL's words.
    fn usage(&self, what: &str) -> DataFusionError {
        let name = self.metric.name().replace('-', "_");
        let calendar = match self.metric {
            Metric::Wau | Metric::Mau => " [, 'calendar']",
            _ => "",
        };
        Error::usage(
            format!("{name}(from, to{calendar}): {what}"),
            format!("e.g. SELECT * FROM {name}('2024-06-01', '2024-06-30')"),
        )
        .into_datafusion()
    }
}

impl TableFunctionImpl for MetricFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> DfResult<Arc<dyn TableProvider>> {
        let exprs = args.exprs();
        let calendar = match exprs.get(2) {
            None => false,
            Some(Expr::Literal(ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s)), _))
                if s == "calendar" =>
            {
                true
            }
            Some(_) => return Err(self.usage("the third argument, if any, is 'calendar'")),
        };
        if calendar && !matches!(self.metric, Metric::Wau | Metric::Mau) {
            return Err(
                self.usage("'calendar' is for wau (ISO weeks) and mau (calendar months) only")
            );
        }
        let (Some(from), Some(to), None) = (exprs.first(), exprs.get(1), exprs.get(3)) else {
            return Err(self.usage("give two days"));
        };
        let (from, to) = (self.day(from, "first")?, self.day(to, "last")?);
        if from > to {
            return Err(self.usage(&format!(
                "the first day {from} is after the last {to}: give the earlier day first"
            )));
        }
        let query =
            Query::new(self.metric, from, to, calendar).map_err(|e| self.usage(&e.to_string()))?;
        // Planning on empty tables touches no storage, so it may run to completion right here.
        let schema = futures::executor::block_on(output_schema(
            &query,
            &self.config.user_column,
            self.events.clone(),
        ))
        .map_err(Error::into_datafusion)?;
        Ok(Arc::new(MetricTable {
            query,
            schema,
            lake: self.lake.clone(),
            config: self.config.clone(),
        }))
    }
}

/// One metric over one range, planned on the lake when scanned.
#[derive(Debug)]
struct MetricTable {
    query: Query,
    schema: SchemaRef,
    lake: Arc<Lake>,
    config: Config,
}

#[async_trait]
impl TableProvider for MetricTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        if let Some((batch, warnings)) = bitmap::run(&self.lake, &self.config, &self.query)
            .await
            .map_err(Error::into_datafusion)?
        {
            for warning in &warnings {
                eprintln!("dau: warning: {warning}");
            }
            let schema = batch.schema();
            return Ok(MemorySourceConfig::try_new_exec(
                &[vec![batch]],
                schema,
                projection.cloned(),
            )?);
        }
        let planned = plan(
            self.lake.clone(),
            &self.config,
            &self.query,
            &BTreeMap::new(),
        )
        .await
        .map_err(Error::into_datafusion)?;
        for warning in &planned.warnings {
            eprintln!("dau: warning: {warning}");
        }
        let input = planned.df.create_physical_plan().await?;
        let Some(projection) = projection else {
            return Ok(input);
        };
        let schema = input.schema();
        let columns = projection.iter().map(|i| {
            let name = schema.field(*i).name().clone();
            (Arc::new(Column::new(&name, *i)) as _, name)
        });
        Ok(Arc::new(ProjectionExec::try_new(columns, input)?))
    }
}
