//! Host-side bindings for the `weir:pipeline/module` worlds: 0.1 (JSON
//! bytes in and out) and 0.2 (a host-held document).

wasmtime::component::bindgen!({
    path: "../wit",
    world: "weir:pipeline/module",
    imports: { default: async },
    exports: { default: async },
});

pub use self::weir::pipeline::types;
pub use exports::weir::pipeline::processor as guest;

/// The 0.2 world. Document methods are synchronous host calls (no I/O);
/// they may trap when a module goes over its document limits.
pub mod v02 {
    wasmtime::component::bindgen!({
        path: "../wit/v0.2",
        world: "weir:pipeline/doc-module@0.2.0",
        imports: { "weir:pipeline/types": trappable, default: async },
        exports: { default: async },
        with: {
            "wasi:logging/logging": super::wasi::logging::logging,
        },
    });

    pub use self::weir::pipeline::types;
    pub use exports::weir::pipeline::processor as guest;
}

/// A compiled, world-checked module, ready to instantiate, in its world.
pub enum Compiled<T: 'static> {
    V01(ModulePre<T>),
    V02(v02::DocModulePre<T>),
}
