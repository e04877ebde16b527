//! JSON values compared by meaning: objects as maps, strings unescaped, numbers by their exact
//! decimal value whatever their spelling (`1e300` = `1e+300` = `1.0e300`), integers of any size.
//!
//! serde_json's `Value` would turn integers beyond 64 bits into floats (the crate is built
//! without `arbitrary_precision`), which would hide exactly the rounding this suite looks for.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::value::RawValue;

/// A JSON value; numbers keep their text.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Array(Vec<Json>),
    Object(BTreeMap<String, Json>),
}

/// A JSON number as written; equality is by exact decimal value.
#[derive(Debug, Clone)]
pub struct Number(pub String);

/// A number as `(negative, significant digits, exponent)`: value = digits x 10^exponent, the
/// digits without leading or trailing zeros (zero is `(false, "", 0)`).
type Decimal = (bool, String, i64);

impl Number {
    fn decimal(&self) -> Decimal {
        let text = self.0.as_str();
        let (negative, text) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (mantissa, exponent) = match text.find(['e', 'E']) {
            Some(i) => (&text[..i], text[i + 1..].parse::<i64>().unwrap_or(0)),
            None => (text, 0),
        };
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let mut digits: String = format!("{int}{frac}");
        let mut exponent = exponent - frac.len() as i64;
        let trimmed = digits.trim_end_matches('0');
        exponent += (digits.len() - trimmed.len()) as i64;
        digits = trimmed.trim_start_matches('0').to_owned();
        if digits.is_empty() {
            return (false, String::new(), 0);
        }
        (negative, digits, exponent)
    }

    /// Whether serde_json reads this number as an integer (u64 or i64) rather than an f64.
    fn is_serde_integer(&self) -> bool {
        !self.0.contains(['.', 'e', 'E'])
            && (self.0.parse::<u64>().is_ok() || self.0.parse::<i64>().is_ok())
    }

    /// The number after a round trip through an IEEE 754 double, written in shortest form.
    fn through_f64(&self) -> Number {
        let value: f64 = self.0.parse().unwrap_or(f64::NAN);
        Number(format!("{value:e}"))
    }
}

impl PartialEq for Number {
    fn eq(&self, other: &Self) -> bool {
        self.decimal() == other.decimal()
    }
}

impl Json {
    /// Parses one JSON text.
    pub fn parse(text: &str) -> Result<Json, String> {
        let raw: &RawValue = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        Self::from_raw(raw)
    }

    fn from_raw(raw: &RawValue) -> Result<Json, String> {
        let text = raw.get();
        let bad = |e: serde_json::Error| format!("not JSON: {e}");
        Ok(match text.as_bytes().first() {
            Some(b'{') => {
                let members: BTreeMap<String, &RawValue> =
                    serde_json::from_str(text).map_err(bad)?;
                Json::Object(
                    members
                        .into_iter()
                        .map(|(k, v)| Ok((k, Self::from_raw(v)?)))
                        .collect::<Result<_, String>>()?,
                )
            }
            Some(b'[') => {
                let items: Vec<&RawValue> = serde_json::from_str(text).map_err(bad)?;
                Json::Array(
                    items
                        .into_iter()
                        .map(Self::from_raw)
                        .collect::<Result<_, _>>()?,
                )
            }
            Some(b'"') => Json::String(serde_json::from_str(text).map_err(bad)?),
            Some(b't') => Json::Bool(true),
            Some(b'f') => Json::Bool(false),
            Some(b'n') => Json::Null,
            _ => Json::Number(Number(text.to_owned())),
        })
    }

    /// The value a parser that holds every number as an f64 sees (JavaScript's `JSON.parse`).
    pub fn through_f64(&self) -> Json {
        self.map_numbers(&|n| n.through_f64())
    }

    /// The value serde_json's `Value` holds without `arbitrary_precision`: integers that fit
    /// 64 bits exactly, every other number as an f64.
    pub fn through_serde_value(&self) -> Json {
        self.map_numbers(&|n| {
            if n.is_serde_integer() {
                n.clone()
            } else {
                n.through_f64()
            }
        })
    }

    fn map_numbers(&self, f: &dyn Fn(&Number) -> Number) -> Json {
        match self {
            Json::Number(n) => Json::Number(f(n)),
            Json::Array(items) => Json::Array(items.iter().map(|i| i.map_numbers(f)).collect()),
            Json::Object(members) => Json::Object(
                members
                    .iter()
                    .map(|(k, v)| (k.clone(), v.map_numbers(f)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// The member `name` of an object.
    pub fn get(&self, name: &str) -> Option<&Json> {
        match self {
            Json::Object(members) => members.get(name),
            _ => None,
        }
    }

    /// The string, when this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }
}

impl fmt::Display for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Json::Null => f.write_str("null"),
            Json::Bool(b) => write!(f, "{b}"),
            Json::Number(n) => f.write_str(&n.0),
            Json::String(s) => write!(f, "{}", serde_json::Value::String(s.clone())),
            Json::Array(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Json::Object(members) => {
                f.write_str("{")?;
                for (i, (k, v)) in members.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{}:{v}", serde_json::Value::String(k.clone()))?;
                }
                f.write_str("}")
            }
        }
    }
}

#[test]
fn numbers_compare_by_exact_value() {
    let n = |s: &str| Number(s.to_owned());
    assert_eq!(n("1e300"), n("1e+300"));
    assert_eq!(n("1e300"), n("10.0e299"));
    assert_eq!(n("0.1"), n("1e-1"));
    assert_eq!(n("0"), n("-0.0"));
    assert_eq!(n("18446744073709551617"), n("18446744073709551617.0"));
    assert_ne!(n("18446744073709551617"), n("18446744073709552000"));
    assert_ne!(n("9007199254740993"), n("9007199254740992"));
    assert_eq!(
        n("18446744073709551617").through_f64(),
        n("18446744073709552000")
    );
    assert_eq!(n("9007199254740993").through_f64(), n("9007199254740992"));
    assert_eq!(n("0.1").through_f64(), n("0.1"));
    assert_eq!(n("5e-324").through_f64(), n("5e-324"));
    assert!(n("9007199254740993").is_serde_integer());
    assert!(!n("18446744073709551617").is_serde_integer());
    assert!(n("-98765432").is_serde_integer());
}

#[test]
fn objects_compare_as_maps_and_strings_unescaped() {
    let a = Json::parse(r#"{"b": [1, true, null], "a": "Zo\u00eb"}"#).unwrap();
    let b = Json::parse(r#"{"a":"Zoë","b":[1.0,true,null]}"#).unwrap();
    assert_eq!(a, b);
    assert_ne!(a, Json::parse(r#"{"a":"Zoë","b":[1,false,null]}"#).unwrap());
    assert!(Json::parse("[1, True]").is_err());
}
