//! Host-side bindings for the `weir:pipeline/module` world.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "weir:pipeline/module",
    imports: { default: async },
    exports: { default: async },
});

pub use self::weir::pipeline::types;
pub use exports::weir::pipeline::processor as guest;
