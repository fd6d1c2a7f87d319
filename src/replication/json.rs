//! The little JSON that Kafka keeps in ZooKeeper: objects, arrays, integers, strings, booleans
//! and null. Coordinator data is input (another broker, another version, or a person with a
//! ZooKeeper shell may have written it), so parsing is bounded: nesting depth and number size
//! are checked, and every failure is an error naming the byte where it happened.

use std::collections::BTreeMap;

/// Deepest nesting accepted; Kafka's documents nest three levels.
const MAX_DEPTH: usize = 16;

/// A parsed JSON value. Numbers must be integers (Kafka's metadata has no fractions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
    Array(Vec<Value>),
    Object(BTreeMap<String, Value>),
}

/// Why a document did not parse, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid json at byte {position}: {reason}")]
pub struct JsonError {
    pub position: usize,
    pub reason: &'static str,
}

impl Value {
    pub(crate) fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(fields) => fields.get(key),
            _ => None,
        }
    }

    pub(crate) fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(value) => Some(*value),
            _ => None,
        }
    }

    pub(crate) fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(values) => Some(values),
            _ => None,
        }
    }

    pub(crate) fn as_object(&self) -> Option<&BTreeMap<String, Value>> {
        match self {
            Value::Object(fields) => Some(fields),
            _ => None,
        }
    }
}

/// Parses one JSON document (surrounding whitespace allowed).
///
/// # Errors
/// `JsonError` for anything that is not one complete, supported JSON value.
pub(crate) fn parse(bytes: &[u8]) -> Result<Value, JsonError> {
    let mut parser = Parser { bytes, position: 0 };
    let value = parser.value(0)?;
    parser.skip_whitespace();
    if parser.position != bytes.len() {
        return Err(parser.error("trailing bytes after the document"));
    }
    Ok(value)
}

struct Parser<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl Parser<'_> {
    fn error(&self, reason: &'static str) -> JsonError {
        JsonError {
            position: self.position,
            reason,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.position).copied()
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.position += 1;
        }
    }

    fn expect(&mut self, byte: u8, reason: &'static str) -> Result<(), JsonError> {
        self.skip_whitespace();
        if self.peek() != Some(byte) {
            return Err(self.error(reason));
        }
        self.position += 1;
        Ok(())
    }

    fn value(&mut self, depth: usize) -> Result<Value, JsonError> {
        if depth > MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        self.skip_whitespace();
        match self.peek() {
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => self.string().map(Value::Str),
            Some(b'-' | b'0'..=b'9') => self.integer(),
            Some(b't') => self.literal(b"true", Value::Bool(true)),
            Some(b'f') => self.literal(b"false", Value::Bool(false)),
            Some(b'n') => self.literal(b"null", Value::Null),
            Some(_) => Err(self.error("unexpected byte")),
            None => Err(self.error("unexpected end")),
        }
    }

    fn literal(&mut self, word: &[u8], value: Value) -> Result<Value, JsonError> {
        if !self.bytes[self.position..].starts_with(word) {
            return Err(self.error("unknown literal"));
        }
        self.position += word.len();
        Ok(value)
    }

    fn object(&mut self, depth: usize) -> Result<Value, JsonError> {
        self.position += 1;
        let mut fields = BTreeMap::new();
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.position += 1;
            return Ok(Value::Object(fields));
        }
        loop {
            self.skip_whitespace();
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a string key"));
            }
            let key = self.string()?;
            self.expect(b':', "expected ':'")?;
            let value = self.value(depth + 1)?;
            fields.insert(key, value);
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.position += 1,
                Some(b'}') => {
                    self.position += 1;
                    return Ok(Value::Object(fields));
                }
                _ => return Err(self.error("expected ',' or '}'")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, JsonError> {
        self.position += 1;
        let mut values = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.position += 1;
            return Ok(Value::Array(values));
        }
        loop {
            values.push(self.value(depth + 1)?);
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.position += 1,
                Some(b']') => {
                    self.position += 1;
                    return Ok(Value::Array(values));
                }
                _ => return Err(self.error("expected ',' or ']'")),
            }
        }
    }

    fn integer(&mut self) -> Result<Value, JsonError> {
        let start = self.position;
        if self.peek() == Some(b'-') {
            self.position += 1;
        }
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.position += 1;
        }
        if matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return Err(self.error("fractions are not supported"));
        }
        std::str::from_utf8(&self.bytes[start..self.position])
            .ok()
            .and_then(|digits| digits.parse::<i64>().ok())
            .map(Value::Int)
            .ok_or_else(|| self.error("integer out of range"))
    }

    fn string(&mut self) -> Result<String, JsonError> {
        self.position += 1;
        let mut out = Vec::new();
        loop {
            let Some(byte) = self.peek() else {
                return Err(self.error("unterminated string"));
            };
            self.position += 1;
            match byte {
                b'"' => break,
                b'\\' => out.push(self.escape()?),
                0..=0x1f => return Err(self.error("control character in string")),
                _ => out.push(byte),
            }
        }
        String::from_utf8(out).map_err(|_| self.error("string is not utf-8"))
    }

    fn escape(&mut self) -> Result<u8, JsonError> {
        let Some(byte) = self.peek() else {
            return Err(self.error("unterminated escape"));
        };
        self.position += 1;
        match byte {
            b'"' | b'\\' | b'/' => Ok(byte),
            b'n' => Ok(b'\n'),
            b't' => Ok(b'\t'),
            b'r' => Ok(b'\r'),
            _ => Err(self.error("unsupported escape")),
        }
    }
}

/// `text` as the inside of a JSON string, with the escapes [`parse`] reads (other control
/// characters, which no host name or path holds, are dropped).
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kafka_partition_state() {
        let value = parse(
            br#"{"controller_epoch":3,"leader":1,"version":1,"leader_epoch":7,"isr":[1,2, 3]}"#,
        )
        .expect("parse");
        assert_eq!(value.get("leader").and_then(Value::as_i64), Some(1));
        let isr: Vec<i64> = value
            .get("isr")
            .and_then(Value::as_array)
            .expect("isr")
            .iter()
            .filter_map(Value::as_i64)
            .collect();
        assert_eq!(isr, vec![1, 2, 3]);
    }

    #[test]
    fn rejects_bad_documents_with_a_position() {
        for bad in [
            &b""[..],
            b"{",
            b"{\"a\":}",
            b"[1,2",
            b"{\"a\":1} x",
            b"1.5",
            b"99999999999999999999",
            b"\"\\u0041\"",
            b"nul",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let deep = "[".repeat(100) + &"]".repeat(100);
        assert_eq!(
            parse(deep.as_bytes()).unwrap_err().reason,
            "nested too deeply"
        );
    }
}
