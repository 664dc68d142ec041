//! A validating JSON scanner for the export verifier's "body is a JSON
//! object" check (audit/SPEC.md section 9.5, check `body`): it accepts exactly
//! the RFC 8259 texts whose top-level value is an object, in valid UTF-8,
//! without lone surrogate escapes, nested at most [`MAX_DEPTH`] deep. Nothing
//! is built or allocated, and numbers are checked against the grammar only
//! (no range), so a million bodies cost a fraction of parsing them into
//! values, and the verdict is the same as `verify.py`'s (`json.loads` plus
//! the same limits).

/// Objects and arrays nested deeper than this are refused (the top-level
/// object is depth 1). Audit bodies are a few levels deep.
pub const MAX_DEPTH: u32 = 128;

/// True if `body` is an RFC 8259 JSON text whose value is an object.
pub fn is_json_object(body: &[u8]) -> bool {
    if std::str::from_utf8(body).is_err() {
        return false;
    }
    let start = skip_ws(body, 0);
    body.get(start) == Some(&b'{') && scan(body, start).is_some()
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// Scans one value starting at `i` (no leading white space) and the white
/// space after it; `Some` only if that reaches the end of `b`.
fn scan(b: &[u8], mut i: usize) -> Option<()> {
    // Bit d - 1 tells whether the container at depth d is an object; with
    // MAX_DEPTH = 128 a u128 is the whole stack.
    let mut objects: u128 = 0;
    let mut depth: u32 = 0;
    loop {
        // A value starts at `i`.
        match *b.get(i)? {
            open @ (b'{' | b'[') => {
                if depth == MAX_DEPTH {
                    return None;
                }
                let object = open == b'{';
                if object {
                    objects |= 1 << depth;
                } else {
                    objects &= !(1 << depth);
                }
                depth += 1;
                i = skip_ws(b, i + 1);
                let close = if object { b'}' } else { b']' };
                if b.get(i) == Some(&close) {
                    depth -= 1;
                    i += 1;
                } else {
                    if object {
                        i = member_name(b, i)?;
                    }
                    continue;
                }
            }
            b'"' => i = string(b, i + 1)?,
            b't' => i = literal(b, i, b"true")?,
            b'f' => i = literal(b, i, b"false")?,
            b'n' => i = literal(b, i, b"null")?,
            b'-' | b'0'..=b'9' => i = number(b, i)?,
            _ => return None,
        }
        // After a value: close containers until the next element starts.
        loop {
            i = skip_ws(b, i);
            if depth == 0 {
                return (i == b.len()).then_some(());
            }
            let object = (objects >> (depth - 1)) & 1 == 1;
            match *b.get(i)? {
                b',' => {
                    i = skip_ws(b, i + 1);
                    if object {
                        i = member_name(b, i)?;
                    }
                    break;
                }
                b'}' if object => {
                    depth -= 1;
                    i += 1;
                }
                b']' if !object => {
                    depth -= 1;
                    i += 1;
                }
                _ => return None,
            }
        }
    }
}

/// `"name" ws : ws` at `i`; returns where the member's value starts.
fn member_name(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let i = skip_ws(b, string(b, i + 1)?);
    if b.get(i) != Some(&b':') {
        return None;
    }
    Some(skip_ws(b, i + 1))
}

fn literal(b: &[u8], i: usize, word: &[u8]) -> Option<usize> {
    let end = i + word.len();
    (b.get(i..end)? == word).then_some(end)
}

fn digits(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b'0'..=b'9')) {
        i += 1;
    }
    i
}

/// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
fn number(b: &[u8], mut i: usize) -> Option<usize> {
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    match *b.get(i)? {
        b'0' => i += 1,
        b'1'..=b'9' => i = digits(b, i + 1),
        _ => return None,
    }
    if b.get(i) == Some(&b'.') {
        let end = digits(b, i + 1);
        if end == i + 1 {
            return None;
        }
        i = end;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let end = digits(b, i);
        if end == i {
            return None;
        }
        i = end;
    }
    Some(i)
}

fn hex4(b: &[u8], i: usize) -> Option<u16> {
    let digits = b.get(i..i + 4)?;
    digits.iter().try_fold(0u16, |acc, &d| {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            b'A'..=b'F' => d - b'A' + 10,
            _ => return None,
        };
        Some(acc << 4 | u16::from(v))
    })
}

/// The rest of a string after its opening quote; returns the index after the
/// closing quote.
fn string(b: &[u8], mut i: usize) -> Option<usize> {
    loop {
        i = skip_plain(b, i);
        match *b.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => {
                match *b.get(i + 1)? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                    b'u' => {
                        let unit = hex4(b, i + 2)?;
                        i += 6;
                        match unit {
                            // A high surrogate needs a low one right after.
                            0xD800..=0xDBFF => {
                                if b.get(i..i + 2)? != b"\\u" {
                                    return None;
                                }
                                if !(0xDC00..=0xDFFF).contains(&hex4(b, i + 2)?) {
                                    return None;
                                }
                                i += 6;
                            }
                            0xDC00..=0xDFFF => return None,
                            _ => {}
                        }
                    }
                    _ => return None,
                }
            }
            // Control characters must be escaped.
            _ => return None,
        }
    }
}

/// Skips string bytes that need no attention (not `"`, `\` or a control
/// character), eight at a time: most of a body is such bytes.
fn skip_plain(b: &[u8], mut i: usize) -> usize {
    const ONES: u64 = u64::MAX / 255;
    const HIGH: u64 = ONES << 7;
    while let Some(chunk) = b.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        // Classic "has a byte below n" tests; exact for the lowest flagged
        // byte, which is all that is used.
        let control = x.wrapping_sub(ONES * 0x20) & !x;
        let q = x ^ (ONES * u64::from(b'"'));
        let quote = q.wrapping_sub(ONES) & !q;
        let s = x ^ (ONES * u64::from(b'\\'));
        let backslash = s.wrapping_sub(ONES) & !s;
        let hits = (control | quote | backslash) & HIGH;
        if hits != 0 {
            return i + (hits.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&c) = b.get(i) {
        if c == b'"' || c == b'\\' || c < 0x20 {
            break;
        }
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_objects() {
        for ok in [
            &b"{}"[..],
            b" {} ",
            b"\t{\r\n}\n",
            br#"{"a":1}"#,
            br#"{ "a" : [ 1 , -0.5e+3 , true , false , null , "x" , {} , [] ] }"#,
            br#"{"a":{"b":{"c":[[["deep"]]]}},"a":2}"#,
            br#"{"s":"\" \\ \/ \b \f \n \r \t \u00e9 \uD83D\uDE00 \ud83d\ude00"}"#,
            "{\"ü\":\"€ 😀\"}".as_bytes(),
            br#"{"n":[0,-0,1.0,1e5,1E-5,123456789012345678901234567890e999999]}"#,
            br#"{"del":""}"#,
        ] {
            assert!(is_json_object(ok), "{}", String::from_utf8_lossy(ok));
        }
    }

    #[test]
    fn refuses_everything_else() {
        for bad in [
            &b""[..],
            b" ",
            b"[]",
            b"1",
            b"\"s\"",
            b"null",
            b"{",
            b"}",
            b"{}}",
            b"{} {}",
            b"{}x",
            br#"{"a"}"#,
            br#"{"a":}"#,
            br#"{"a":1,}"#,
            br#"{,"a":1}"#,
            br#"{"a":1 "b":2}"#,
            br#"{a:1}"#,
            br#"{'a':1}"#,
            br#"{"a":[1,]}"#,
            br#"{"a":[1 2]}"#,
            br#"{"a":]}"#,
            br#"{"a":[}"#,
            br#"{"a":01}"#,
            br#"{"a":1.}"#,
            br#"{"a":.5}"#,
            br#"{"a":1e}"#,
            br#"{"a":1e+}"#,
            br#"{"a":-}"#,
            br#"{"a":+1}"#,
            br#"{"a":NaN}"#,
            br#"{"a":Infinity}"#,
            br#"{"a":-Infinity}"#,
            br#"{"a":tru}"#,
            br#"{"a":True}"#,
            br#"{"a":"\x"}"#,
            br#"{"a":"\u12"}"#,
            br#"{"a":"\u12G4"}"#,
            br#"{"a":"\ud800"}"#,
            br#"{"a":"\udc00"}"#,
            br#"{"a":"\ud800\u0041"}"#,
            br#"{"a":"\ud800x"}"#,
            br#"{"a":"\ud800\ud800\udc00"}"#,
            b"{\"a\":\"tab\there\"}",
            b"{\"a\":\"nl\nhere\"}",
            b"{\"a\":\"nul\0\"}",
            b"{\"a\":\"unterminated}",
            b"\xef\xbb\xbf{}",
            b"{\"a\":\"\xff\"}",
            b"{\"a\":\"\xed\xa0\x80\"}",
            b"{\"a\":1}\x0b",
        ] {
            assert!(!is_json_object(bad), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn nesting_is_limited() {
        let nested = |depth: usize| {
            let mut s = String::from("{\"a\":");
            s.push_str(&"[".repeat(depth - 1));
            s.push_str(&"]".repeat(depth - 1));
            s.push('}');
            s.into_bytes()
        };
        assert!(is_json_object(&nested(128)));
        assert!(!is_json_object(&nested(129)));
        assert!(!is_json_object(&nested(10_000)));
    }

    #[test]
    fn long_strings_cross_the_eight_byte_steps() {
        for len in 0..40 {
            for special in ["\\\"", "\\n", "é", "\\u00e9"] {
                for at in 0..=len {
                    let mut s = "x".repeat(len);
                    s.insert_str(at, special);
                    let text = format!("{{\"k\":\"{s}\"}}");
                    assert!(is_json_object(text.as_bytes()), "{text}");
                    let raw = format!(
                        "{{\"k\":\"{}\u{1}{}\"}}",
                        &"x".repeat(at),
                        "x".repeat(len - at)
                    );
                    assert!(!is_json_object(raw.as_bytes()), "{raw:?}");
                }
            }
        }
    }

    proptest! {
        /// Agrees with serde_json on its own output (any object serde_json
        /// writes is valid JSON) and on arbitrary bytes where serde_json's
        /// verdict does not depend on number range.
        #[test]
        fn agrees_with_serde_json(
            keys in proptest::collection::vec("\\PC{0,12}", 0..6),
            text in "\\PC{0,40}",
            bytes in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let value: serde_json::Map<String, serde_json::Value> = keys
                .iter()
                .map(|k| (k.clone(), serde_json::json!([text, 1, -2, null, {"t": true}])))
                .collect();
            let written = serde_json::to_vec(&value).unwrap();
            prop_assert!(is_json_object(&written));
            let pretty = serde_json::to_vec_pretty(&value).unwrap();
            prop_assert!(is_json_object(&pretty));
            let theirs = matches!(
                serde_json::from_slice::<serde_json::Value>(&bytes),
                Ok(serde_json::Value::Object(_))
            );
            prop_assert_eq!(is_json_object(&bytes), theirs);
            let mut damaged = written.clone();
            if let Some(b) = damaged.get_mut(bytes.len() % written.len().max(1)) {
                *b ^= bytes.first().copied().unwrap_or(1) | 1;
            }
            let theirs = matches!(
                serde_json::from_slice::<serde_json::Value>(&damaged),
                Ok(serde_json::Value::Object(_))
            );
            prop_assert_eq!(is_json_object(&damaged), theirs, "{:?}", String::from_utf8_lossy(&damaged));
        }
    }
}
