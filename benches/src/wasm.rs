//! Module bytes for benchmarks.

/// `base` with a custom section naming `tag`: the same behaviour, other
/// bytes (another digest, another compile-cache entry).
pub fn tagged(base: &[u8], tag: &str) -> Vec<u8> {
    let name = b"weir-bench-tenant";
    let mut content = Vec::new();
    leb128(name.len(), &mut content);
    content.extend_from_slice(name);
    content.extend_from_slice(tag.as_bytes());
    let mut out = base.to_vec();
    out.push(0);
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
