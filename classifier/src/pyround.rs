//! Python's `round(x, ndigits)` for floats.
//!
//! CPython rounds the exact binary value to `ndigits` decimals (ties to even)
//! and reads the decimal string back. Rust's `{:.N}` formatting performs the
//! same exact, ties-to-even decimal conversion, so formatting and re-parsing
//! reproduces Python bit for bit (including `-0.0`).

/// Rounds `x` to `ndigits` decimal places exactly as Python's `round` does.
pub fn py_round(x: f64, ndigits: usize) -> f64 {
    if !x.is_finite() {
        return x;
    }
    format!("{x:.ndigits$}")
        .parse()
        .expect("formatted float parses")
}

#[cfg(test)]
mod tests {
    use super::py_round;

    #[test]
    fn ties_go_to_even_on_the_exact_binary_value() {
        assert_eq!(py_round(0.125, 2), 0.12);
        assert_eq!(py_round(0.375, 2), 0.38);
        assert_eq!(py_round(0.0625, 3), 0.062);
        assert_eq!(py_round(2.675, 2), 2.67); // 2.675 is 2.67499999... in binary
        assert_eq!(py_round(0.28125, 4), 0.2812);
    }

    #[test]
    fn keeps_the_sign_of_zero() {
        assert!(py_round(-0.00004, 4).is_sign_negative());
        assert_eq!(py_round(-0.00004, 4), 0.0);
    }
}
