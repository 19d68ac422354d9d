//! Module bytes for tests and benchmarks.

/// `base` with a custom section `name` holding `payload` appended: a
/// component with the same behaviour but other bytes (another digest,
/// another compile-cache entry), so versions can be told apart.
pub fn with_custom_section(base: &[u8], name: &str, payload: &[u8]) -> Vec<u8> {
    let mut content = Vec::new();
    leb128(name.len(), &mut content);
    content.extend_from_slice(name.as_bytes());
    content.extend_from_slice(payload);
    let mut out = base.to_vec();
    out.push(0); // custom section id
    leb128(content.len(), &mut out);
    out.extend(content);
    out
}

fn leb128(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}
