//! User ids stored as 16 bytes (Parquet's UUID, as DuckDB and ClickHouse write them) read as
//! their text, `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` in lower case, as those engines, PostgreSQL
//! and Python print them: one user with the same UUID written as text in another file. The
//! bitmaps convert them as they read them ([`texts`]); the SQL through an expression adapter
//! that reads such a file's user column through `uuid_text`.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, FixedSizeBinaryArray, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::physical_expr::ScalarFunctionExpr;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr_adapter::{
    DefaultPhysicalExprAdapterFactory, PhysicalExprAdapter, PhysicalExprAdapterFactory,
};
use datafusion::physical_plan::PhysicalExpr;

/// The width of a UUID.
const BYTES: i32 = 16;

/// Whether ids of type `t` are UUIDs: 16 bytes each.
pub fn is_uuid(t: &DataType) -> bool {
    t == &DataType::FixedSizeBinary(BYTES)
}

/// Each 16-byte id as its UUID text.
pub fn texts(ids: &FixedSizeBinaryArray) -> StringArray {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let text = |bytes: &[u8]| {
        let mut out = String::with_capacity(36);
        for (i, byte) in bytes.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                out.push('-');
            }
            out.push(HEX[usize::from(byte >> 4)] as char);
            out.push(HEX[usize::from(byte & 15)] as char);
        }
        out
    };
    ids.iter().map(|id| id.map(text)).collect()
}

/// `uuid_text(id)`: a 16-byte id as its UUID text.
#[derive(Debug, PartialEq, Eq, Hash)]
struct UuidText {
    signature: Signature,
}

impl ScalarUDFImpl for UuidText {
    fn name(&self) -> &str {
        "uuid_text"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [ids] = args.args.as_slice() else {
            return Err(DataFusionError::Internal("uuid_text takes one id".into()));
        };
        let ids = ids.to_array(args.number_rows)?;
        let ids = ids.as_fixed_size_binary_opt().ok_or_else(|| {
            DataFusionError::Internal(format!("uuid_text of {}", ids.data_type()))
        })?;
        Ok(ColumnarValue::Array(Arc::new(texts(ids)) as ArrayRef))
    }
}

/// Reads a file's user column as the table's `user`: in a file whose column is named so but for
/// case (see [`super::inspect::user_field`]), that column; one that holds UUIDs, where the table
/// has text, through `uuid_text`; anything else as DataFusion does.
#[derive(Debug)]
pub struct UserIds {
    pub user: String,
}

impl PhysicalExprAdapterFactory for UserIds {
    fn create(
        &self,
        logical: SchemaRef,
        physical: SchemaRef,
    ) -> Result<Arc<dyn PhysicalExprAdapter>> {
        let Some(field) = super::inspect::user_field(&physical, &self.user).cloned() else {
            return DefaultPhysicalExprAdapterFactory.create(logical, physical);
        };
        let text = logical
            .field_with_name(&self.user)
            .is_ok_and(|f| f.data_type() == &DataType::Utf8);
        let uuids = is_uuid(field.data_type()) && text;
        if field.name() == &self.user && !uuids {
            return DefaultPhysicalExprAdapterFactory.create(logical, physical);
        }
        // The default adapter, told that the table's ids are the file's column by its name (and,
        // for UUIDs, of its type, so that it reads them as they are).
        let fields = logical
            .fields()
            .iter()
            .map(|f| match f.name() == &self.user {
                true if uuids => Arc::new(field.clone()),
                true => Arc::new(f.as_ref().clone().with_name(field.name())),
                false => f.clone(),
            });
        let as_in_file = Arc::new(Schema::new(fields.collect::<Vec<_>>()));
        Ok(Arc::new(UserAdapter {
            inner: DefaultPhysicalExprAdapterFactory.create(as_in_file, physical)?,
            user: self.user.clone(),
            name: field.name().clone(),
            text: uuids.then(|| {
                Arc::new(ScalarUDF::from(UuidText {
                    signature: Signature::any(1, Volatility::Immutable),
                }))
            }),
        }))
    }
}

#[derive(Debug)]
struct UserAdapter {
    inner: Arc<dyn PhysicalExprAdapter>,
    /// The table's name for the user column, and the file's.
    user: String,
    name: String,
    /// `uuid_text`, for a file of UUIDs.
    text: Option<Arc<ScalarUDF>>,
}

impl PhysicalExprAdapter for UserAdapter {
    fn rewrite(&self, expr: Arc<dyn PhysicalExpr>) -> Result<Arc<dyn PhysicalExpr>> {
        let named = |e: &Arc<dyn PhysicalExpr>, name: &str| {
            e.downcast_ref::<Column>()
                .filter(|c| c.name() == name)
                .map(|c| c.index())
        };
        // The table's column by the file's name, then as the default adapter reads it.
        let expr = expr.transform(|e| match named(&e, &self.user) {
            Some(index) => Ok(Transformed::yes(
                Arc::new(Column::new(&self.name, index)) as _
            )),
            None => Ok(Transformed::no(e)),
        });
        let expr = self.inner.rewrite(expr.data()?)?;
        let Some(text) = &self.text else {
            return Ok(expr);
        };
        expr.transform(|e| match named(&e, &self.name) {
            Some(_) => Ok(Transformed::yes(Arc::new(ScalarFunctionExpr::new(
                "uuid_text",
                text.clone(),
                vec![e.clone()],
                Arc::new(Field::new(&self.user, DataType::Utf8, true)),
                Arc::new(ConfigOptions::default()),
            )) as _)),
            None => Ok(Transformed::no(e)),
        })
        .data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixteen_bytes_read_as_uuid_text() {
        let id: [u8; 16] = *b"\x55\x0e\x84\x00\xe2\x9b\x41\xd4\xa7\x16\x44\x66\x55\x44\x00\x00";
        let ids = FixedSizeBinaryArray::try_from_sparse_iter_with_size(
            [Some(id), None, Some([0xff; 16])].into_iter(),
            16,
        )
        .unwrap();
        let texts = texts(&ids);
        let got: Vec<Option<&str>> = texts.iter().collect();
        assert_eq!(
            got,
            [
                Some("550e8400-e29b-41d4-a716-446655440000"),
                None,
                Some("ffffffff-ffff-ffff-ffff-ffffffffffff"),
            ]
        );
    }
}
