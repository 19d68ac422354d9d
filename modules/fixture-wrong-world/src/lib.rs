//! Test fixture: a valid WebAssembly component that does NOT implement the
//! `weir:pipeline` world. It exports a single `greet` function from its own
//! world, built with wit-bindgen directly (not the SDK). The host must
//! refuse to load it with a clear error.

wit_bindgen::generate!({
    inline: "
        package fixture:wrong-world;

        world greeter {
            export greet: func(name: string) -> string;
        }
    ",
});

/// The component's only export.
pub struct Greeter;

impl Guest for Greeter {
    fn greet(name: String) -> String {
        format!("hello, {name}")
    }
}

#[cfg(target_arch = "wasm32")]
export!(Greeter);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greets() {
        assert_eq!(Greeter::greet("weir".into()), "hello, weir");
    }
}
