//! The `--dump` format of `snapcache-client`: the state, one JSON object per line, sorted by key
//! (bytewise), so that it can be compared with another listing (for example
//! `etcdctl get --prefix`, converted).
//!
//! Each line is `{"key":K,"value":V}` in serde_json's compact form (no spaces), where `K` and
//! `V` are JSON strings if the bytes are valid UTF-8. A key that is not UTF-8 is written as
//! `"key_b64"` instead of `"key"`, and a value as `"value_b64"` instead of `"value"`, holding
//! the standard base64 encoding (with padding). The key field always comes first.
//!
//! ```
//! use snapcache_grpc::dump::dump_line;
//! assert_eq!(dump_line(b"a/b", b"1"), r#"{"key":"a/b","value":"1"}"#);
//! assert_eq!(dump_line(b"k", &[0xff, 0]), r#"{"key":"k","value_b64":"/wA="}"#);
//! assert_eq!(dump_line(b"q\"", b"\n"), r#"{"key":"q\"","value":"\n"}"#);
//! ```

use std::collections::HashMap;
use std::io::{self, Write};

use base64::Engine as _;
use bytes::Bytes;
use serde::Serialize;

#[derive(Serialize)]
struct Line<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_b64: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value_b64: Option<String>,
}

fn text_or_b64(bytes: &[u8]) -> (Option<&str>, Option<String>) {
    match std::str::from_utf8(bytes) {
        Ok(s) => (Some(s), None),
        Err(_) => (
            None,
            Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
        ),
    }
}

/// One line of the dump (without the newline).
pub fn dump_line(key: &[u8], value: &[u8]) -> String {
    let (key, key_b64) = text_or_b64(key);
    let (value, value_b64) = text_or_b64(value);
    serde_json::to_string(&Line {
        key,
        key_b64,
        value,
        value_b64,
    })
    .expect("strings always serialize")
}

/// Writes `map` as the dump: one line per key, sorted by key bytes.
pub fn write_dump(map: &HashMap<Bytes, Bytes>, mut out: impl Write) -> io::Result<()> {
    let mut keys: Vec<&Bytes> = map.keys().collect();
    keys.sort_unstable();
    for k in keys {
        writeln!(out, "{}", dump_line(k, &map[k]))?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dump_is_sorted_by_key_bytes_and_marks_binary_keys() {
        let map: HashMap<Bytes, Bytes> = [
            (Bytes::from("b"), Bytes::from("2")),
            (Bytes::from_static(&[0xc3]), Bytes::from("x")),
            (Bytes::from("a"), Bytes::from("é")),
        ]
        .into_iter()
        .collect();
        let mut out = Vec::new();
        write_dump(&map, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"key\":\"a\",\"value\":\"é\"}\n{\"key\":\"b\",\"value\":\"2\"}\n{\"key_b64\":\"ww==\",\"value\":\"x\"}\n"
        );
    }
}
