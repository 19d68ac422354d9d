//! Code generation. Every check that can fail is emitted with the span of
//! the user's tokens, so compiler errors point at their code.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, ItemImpl, ReturnType, Type};

use crate::args::{Options, World};

const FN_SHAPE: &str = "expected `fn process(record: Record, config: &Config) -> Outcome` \
     (the config argument is optional; the return type may be `Result<Outcome, Error>`)";

/// Glue for a per-record function: a hidden `Processor` holding the config
/// that calls the function for each record.
pub fn function(function: &ItemFn, options: &Options) -> syn::Result<TokenStream> {
    let sig = &function.sig;
    if let Some(token) = &sig.asyncness {
        return Err(syn::Error::new_spanned(
            token,
            "a module function cannot be async",
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return Err(syn::Error::new_spanned(
            &sig.generics,
            "a module function cannot be generic",
        ));
    }
    if let Some(FnArg::Receiver(receiver)) = sig.inputs.first() {
        return Err(syn::Error::new_spanned(receiver, FN_SHAPE));
    }
    let output = match &sig.output {
        ReturnType::Type(_, ty) => ty,
        ReturnType::Default => return Err(syn::Error::new_spanned(sig, FN_SHAPE)),
    };

    let ident = &sig.ident;
    // Coercing the fn item to a typed fn pointer checks the arguments; the
    // error names the expected and the found signature.
    let call = match sig.inputs.len() {
        1 => quote_spanned! {sig.inputs.span()=>
            let function: fn(::weir_guest::Record) -> _ = #ident;
            function(record)
        },
        2 => quote_spanned! {sig.inputs.span()=>
            let function: fn(::weir_guest::Record, &::weir_guest::Config) -> _ = #ident;
            function(record, &self.0)
        },
        _ => return Err(syn::Error::new_spanned(&sig.inputs, FN_SHAPE)),
    };
    let into_outcome = quote_spanned! {output.span()=>
        <_ as ::weir_guest::__private::IntoOutcome>::into_outcome
    };
    let exports = exports(&quote!(__WeirFunction), options);

    Ok(quote! {
        const _: () = {
            /// The function's module state: just its config.
            #[doc(hidden)]
            struct __WeirFunction(::weir_guest::Config);

            impl ::weir_guest::Processor for __WeirFunction {
                fn init(
                    config: &::weir_guest::Config,
                ) -> ::core::result::Result<Self, ::weir_guest::Error> {
                    ::core::result::Result::Ok(Self(::core::clone::Clone::clone(config)))
                }

                fn process(&mut self, record: ::weir_guest::Record) -> ::weir_guest::Outcome {
                    #into_outcome({ #call })
                }
            }

            #exports
        };
    })
}

/// Glue for `impl Processor for T`: exports `T`.
pub fn processor_impl(block: &ItemImpl, options: &Options) -> syn::Result<TokenStream> {
    let Some((None, path, _)) = &block.trait_ else {
        return Err(syn::Error::new_spanned(
            block.impl_token,
            "#[weir_guest::module] on an impl block needs `impl Processor for YourType`",
        ));
    };
    if path.segments.last().is_none_or(|s| s.ident != "Processor") {
        return Err(syn::Error::new_spanned(
            path,
            "expected `impl Processor for YourType` (the trait `weir_guest::Processor`)",
        ));
    }
    if !block.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &block.generics,
            "the exported processor cannot be generic; export a concrete type",
        ));
    }
    let self_ty: &Type = &block.self_ty;
    let ty = quote_spanned!(self_ty.span()=> #self_ty);
    Ok(exports(&ty, options))
}

/// The `processor` exports for state type `ty`: a `Guest` impl delegating
/// to the SDK runtime, exported only when compiling to WebAssembly.
fn exports(ty: &TokenStream, options: &Options) -> TokenStream {
    let name = options
        .name
        .as_ref()
        .map_or_else(|| quote!(::core::env!("CARGO_PKG_NAME")), |e| quote!(#e));
    let version = options
        .version
        .as_ref()
        .map_or_else(|| quote!(::core::env!("CARGO_PKG_VERSION")), |e| quote!(#e));
    let (guest, info, process, export, bindings) = match options.world.unwrap_or_default() {
        World::V01 => (
            quote!(::weir_guest::__private::Guest),
            quote!(::weir_guest::__private::ModuleInfo),
            quote! {
                fn process(
                    batch: ::std::vec::Vec<::weir_guest::__private::bindings::weir::pipeline::types::Record>,
                ) -> ::std::vec::Vec<::weir_guest::__private::bindings::weir::pipeline::types::Outcome> {
                    ::weir_guest::__private::process_v01(batch)
                }
            },
            quote!(::weir_guest::__private::export),
            quote!(::weir_guest::__private::bindings),
        ),
        World::V02 => (
            quote!(::weir_guest::__private::GuestV02),
            quote!(::weir_guest::__private::ModuleInfoV02),
            quote! {
                fn process(
                    batch: ::std::vec::Vec<::weir_guest::__private::bindings_v02::weir::pipeline::types::Record>,
                ) -> ::std::vec::Vec<::weir_guest::__private::bindings_v02::weir::pipeline::types::Outcome> {
                    ::weir_guest::__private::process_v02(batch)
                }
            },
            quote!(::weir_guest::__private::export_v02),
            quote!(::weir_guest::__private::bindings_v02),
        ),
    };
    quote! {
        const _: () = {
            #[doc(hidden)]
            struct __WeirGuest;

            impl #guest for __WeirGuest {
                fn describe() -> #info {
                    #info {
                        name: ::std::convert::Into::into(#name),
                        version: ::std::convert::Into::into(#version),
                    }
                }

                fn init(
                    config: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
                ) -> ::core::result::Result<(), ::std::string::String> {
                    ::weir_guest::__private::init::<#ty>(config)
                }

                #process
            }

            // Native builds export nothing; naming the glue here keeps it,
            // and so the user's code, from being reported as dead code.
            #[cfg(not(target_arch = "wasm32"))]
            const _: () = {
                let _ = <__WeirGuest as #guest>::describe;
                let _ = <__WeirGuest as #guest>::init;
                let _ = <__WeirGuest as #guest>::process;
            };

            #[cfg(target_arch = "wasm32")]
            #export!(
                __WeirGuest with_types_in #bindings
            );
        };
    }
}
