//! `#[weir_guest::module]`: turns a function or a `Processor` impl into the
//! exports of a Weir module component. Use it through `weir_guest::module`.

mod args;
mod expand;

use proc_macro::TokenStream;
use syn::{Item, parse_macro_input};

/// Exports a function or a `Processor` impl as this crate's Weir module.
///
/// The annotated item is left exactly as written, so it can be unit-tested
/// natively; the macro adds the WebAssembly exports next to it (only when
/// compiling for `wasm32`) plus type checks that point at your code when
/// the signature is wrong. Use it once per crate.
///
/// # Accepted forms
///
/// A per-record function, with or without the config argument, returning
/// `Outcome` or `Result<Outcome, E>` (an `Err` becomes `Outcome::Fail` with
/// the error's message; `E` is `weir_guest::Error` or anything that
/// converts into it, such as any `std::error::Error`):
///
/// ```
/// use weir_guest::{Config, Error, Outcome, Record};
///
/// #[weir_guest::module]
/// fn process(record: Record, config: &Config) -> Result<Outcome, Error> {
///     let _ = config;
///     Ok(Outcome::emit_one(record.into_document()?))
/// }
/// ```
///
/// ```
/// use weir_guest::{Outcome, Record};
///
/// #[weir_guest::module]
/// fn process(record: Record) -> Outcome {
///     if record.value.is_empty() { Outcome::Drop } else { Outcome::fail("not today") }
/// }
/// ```
///
/// A stateful processor: an `impl weir_guest::Processor for YourType`
/// block. `init` runs once per instance, `process` (or your own
/// `process_batch`) for the batch:
///
/// ```
/// use weir_guest::{Config, Error, Outcome, Processor, Record};
///
/// struct Counter { seen: u64 }
///
/// #[weir_guest::module]
/// impl Processor for Counter {
///     fn init(_config: &Config) -> Result<Self, Error> { Ok(Counter { seen: 0 }) }
///     fn process(&mut self, _record: Record) -> Outcome {
///         self.seen += 1;
///         Outcome::Drop
///     }
/// }
/// ```
///
/// # Options
///
/// `describe()` reports the crate's `CARGO_PKG_NAME` and
/// `CARGO_PKG_VERSION`; override either with an expression that yields a
/// `String` or `&str`: `#[weir_guest::module(name = "cleaner", version = my_version())]`.
///
/// # Rejected signatures
///
/// Arguments of the wrong type:
///
/// ```compile_fail
/// use weir_guest::{Outcome, Record};
/// #[weir_guest::module]
/// fn process(record: &Record) -> Outcome { Outcome::Drop }
/// ```
///
/// A return type other than `Outcome` / `Result<Outcome, _>`:
///
/// ```compile_fail
/// use weir_guest::{Document, Record};
/// #[weir_guest::module]
/// fn process(record: Record) -> Option<Document> { None }
/// ```
///
/// No return type:
///
/// ```compile_fail
/// use weir_guest::Record;
/// #[weir_guest::module]
/// fn process(record: Record) {}
/// ```
///
/// Too many arguments:
///
/// ```compile_fail
/// use weir_guest::{Config, Outcome, Record};
/// #[weir_guest::module]
/// fn process(record: Record, config: &Config, extra: u8) -> Outcome { Outcome::Drop }
/// ```
///
/// Generic or async functions:
///
/// ```compile_fail
/// use weir_guest::{Outcome, Record};
/// #[weir_guest::module]
/// async fn process(record: Record) -> Outcome { Outcome::Drop }
/// ```
///
/// An `init` that does not return `Result<Self, Error>`:
///
/// ```compile_fail
/// use weir_guest::{Config, Outcome, Processor, Record};
/// struct S;
/// #[weir_guest::module]
/// impl Processor for S {
///     fn init(_config: &Config) -> Self { S }
///     fn process(&mut self, _record: Record) -> Outcome { Outcome::Drop }
/// }
/// ```
///
/// An impl of some other trait, or an inherent impl:
///
/// ```compile_fail
/// use weir_guest::{Outcome, Record};
/// struct S;
/// #[weir_guest::module]
/// impl S {
///     fn process(&mut self, _record: Record) -> Outcome { Outcome::Drop }
/// }
/// ```
///
/// ```compile_fail
/// struct S;
/// #[weir_guest::module]
/// impl Default for S {
///     fn default() -> Self { S }
/// }
/// ```
#[proc_macro_attribute]
pub fn module(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut options = args::Options::default();
    let parser = syn::meta::parser(|meta| options.parse(meta));
    parse_macro_input!(attr with parser);

    let item = parse_macro_input!(item as Item);
    let result = match &item {
        Item::Fn(function) => expand::function(function, &options),
        Item::Impl(block) => expand::processor_impl(block, &options),
        other => Err(syn::Error::new_spanned(
            other,
            "#[weir_guest::module] goes on `fn process(record: Record, config: &Config) -> Outcome` \
             or on `impl Processor for YourType`",
        )),
    };
    let glue = result.unwrap_or_else(syn::Error::into_compile_error);
    quote::quote!(#item #glue).into()
}
