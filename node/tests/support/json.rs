//! JSON from the client scripts and the admin endpoint, read with `serde_json`: index a
//! [`Value`] with `v["key"]` or `v[0]` (JSON null when absent) and take what is expected with
//! the [`Json`] accessors, which panic with the value when it is something else. Integers
//! read back exactly (64-bit offsets and timestamps).

pub use serde_json::Value;

pub fn parse(text: &str) -> Result<Value, String> {
    serde_json::from_str(text).map_err(|e| e.to_string())
}

/// Accessors that expect a kind of value (a test failure names what was there instead).
pub trait Json {
    fn i64(&self) -> i64;
    fn f64(&self) -> f64;
    fn bool(&self) -> bool;
    /// The string, or `None` for JSON null.
    fn opt_str(&self) -> Option<&str>;
    fn str(&self) -> &str;
    fn arr(&self) -> &[Value];
    fn obj(&self) -> &serde_json::Map<String, Value>;
}

impl Json for Value {
    fn i64(&self) -> i64 {
        match self {
            Value::Number(n) => n.as_i64().unwrap_or_else(|| n.as_f64().expect("a number") as i64),
            other => panic!("expected an integer, got {other}"),
        }
    }

    fn f64(&self) -> f64 {
        self.as_f64().unwrap_or_else(|| panic!("expected a number, got {self}"))
    }

    fn bool(&self) -> bool {
        self.as_bool().unwrap_or_else(|| panic!("expected a bool, got {self}"))
    }

    fn opt_str(&self) -> Option<&str> {
        match self {
            Value::Null => None,
            Value::String(s) => Some(s),
            other => panic!("expected a string or null, got {other}"),
        }
    }

    fn str(&self) -> &str {
        self.opt_str().expect("expected a string, got null")
    }

    fn arr(&self) -> &[Value] {
        self.as_array().unwrap_or_else(|| panic!("expected an array, got {self}"))
    }

    fn obj(&self) -> &serde_json::Map<String, Value> {
        self.as_object().unwrap_or_else(|| panic!("expected an object, got {self}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_python_json_dumps_writes() {
        let v =
            parse(r#"{"a":[1,-2,3.5e2,null,true],"s":"x\"\u00e9\ud83d\ude00","big":1700000000123,"o":{}}"#).unwrap();
        assert_eq!(v["a"].arr()[1].i64(), -2);
        assert_eq!(v["a"][2].i64(), 350);
        assert_eq!(v["s"].str(), "x\"é😀");
        assert_eq!(v["big"].i64(), 1_700_000_000_123);
        assert!(v["missing"].is_null());
        assert!(v["a"]["not an object"].is_null());
    }
}
