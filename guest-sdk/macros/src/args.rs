//! The attribute's optional arguments: `name = <expr>`, `version = <expr>`,
//! `world = "0.1" | "0.2"`.

use syn::meta::ParseNestedMeta;
use syn::{Expr, LitStr};

/// Which `weir:pipeline` world the module exports.
#[derive(Default, Clone, Copy, PartialEq, Eq)]
pub enum World {
    /// JSON bytes in and out (`weir:pipeline@0.1.0`).
    V01,
    /// A host-held document (`weir:pipeline@0.2.0`), the default.
    #[default]
    V02,
}

/// Overrides for what `describe()` reports, and the world.
#[derive(Default)]
pub struct Options {
    /// Module name; the crate's `CARGO_PKG_NAME` when absent.
    pub name: Option<Expr>,
    /// Module version; the crate's `CARGO_PKG_VERSION` when absent.
    pub version: Option<Expr>,
    /// The world to export; 0.2 when absent.
    pub world: Option<World>,
}

impl Options {
    /// Parses one `key = value` argument.
    pub fn parse(&mut self, meta: ParseNestedMeta<'_>) -> syn::Result<()> {
        if meta.path.is_ident("world") {
            if self.world.is_some() {
                return Err(meta.error("argument given twice"));
            }
            let lit: LitStr = meta.value()?.parse()?;
            self.world = Some(match lit.value().as_str() {
                "0.1" => World::V01,
                "0.2" => World::V02,
                _ => {
                    return Err(syn::Error::new_spanned(
                        lit,
                        "unknown world; expected \"0.1\" (JSON bytes) or \"0.2\" (host-held document)",
                    ));
                }
            });
            return Ok(());
        }
        let slot = if meta.path.is_ident("name") {
            &mut self.name
        } else if meta.path.is_ident("version") {
            &mut self.version
        } else {
            return Err(meta.error(
                "unknown argument; expected `name = ...`, `version = ...` or `world = \"0.1\"`",
            ));
        };
        if slot.is_some() {
            return Err(meta.error("argument given twice"));
        }
        *slot = Some(meta.value()?.parse()?);
        Ok(())
    }
}
