//! The attribute's optional arguments: `name = <expr>`, `version = <expr>`.

use syn::Expr;
use syn::meta::ParseNestedMeta;

/// Overrides for what `describe()` reports.
#[derive(Default)]
pub struct Options {
    /// Module name; the crate's `CARGO_PKG_NAME` when absent.
    pub name: Option<Expr>,
    /// Module version; the crate's `CARGO_PKG_VERSION` when absent.
    pub version: Option<Expr>,
}

impl Options {
    /// Parses one `key = value` argument.
    pub fn parse(&mut self, meta: ParseNestedMeta<'_>) -> syn::Result<()> {
        let slot = if meta.path.is_ident("name") {
            &mut self.name
        } else if meta.path.is_ident("version") {
            &mut self.version
        } else {
            return Err(meta.error("unknown argument; expected `name = ...` or `version = ...`"));
        };
        if slot.is_some() {
            return Err(meta.error("argument given twice"));
        }
        *slot = Some(meta.value()?.parse()?);
        Ok(())
    }
}
