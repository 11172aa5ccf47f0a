//! The OVSDB value model of RFC 7047 section 5.1: atoms, sets and maps, and their JSON notation.

use serde_json::{json, Value as Json};

/// Why a JSON value is not a valid OVSDB value.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ValueError {
    #[error("OVSDB value {0}: expected an atom, [\"set\",[..]], [\"map\",[..]], [\"uuid\",..] or [\"named-uuid\",..]")]
    Malformed(String),
}

/// One atomic value. Uuids keep their text form; OVSDB only compares them.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
pub enum Atom {
    Integer(i64),
    Real(f64),
    Boolean(bool),
    String(String),
    Uuid(String),
    /// A row inserted earlier in the same transaction, by its `uuid-name`.
    NamedUuid(String),
}

/// A column value: an atom, a set or a map.
///
/// OVSDB writes a one-element set as the bare atom, so [`Value::from_json`] reads a bare atom as
/// [`Value::Atom`]; use [`Value::as_set`] to see any value as a set.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Atom(Atom),
    Set(Vec<Atom>),
    Map(Vec<(Atom, Atom)>),
}

impl Atom {
    pub fn to_json(&self) -> Json {
        match self {
            Atom::Integer(i) => json!(i),
            Atom::Real(r) => json!(r),
            Atom::Boolean(b) => json!(b),
            Atom::String(s) => json!(s),
            Atom::Uuid(u) => json!(["uuid", u]),
            Atom::NamedUuid(n) => json!(["named-uuid", n]),
        }
    }

    pub fn from_json(j: &Json) -> Result<Atom, ValueError> {
        let bad = || ValueError::Malformed(j.to_string());
        Ok(match j {
            Json::Bool(b) => Atom::Boolean(*b),
            Json::String(s) => Atom::String(s.clone()),
            Json::Number(n) => match n.as_i64() {
                Some(i) => Atom::Integer(i),
                None => Atom::Real(n.as_f64().ok_or_else(bad)?),
            },
            Json::Array(a) => match (a.first().and_then(Json::as_str), a.get(1), a.len()) {
                (Some("uuid"), Some(Json::String(u)), 2) => Atom::Uuid(u.clone()),
                (Some("named-uuid"), Some(Json::String(n)), 2) => Atom::NamedUuid(n.clone()),
                _ => return Err(bad()),
            },
            _ => return Err(bad()),
        })
    }
}

impl Value {
    pub fn to_json(&self) -> Json {
        match self {
            Value::Atom(a) => a.to_json(),
            Value::Set(s) => json!(["set", s.iter().map(Atom::to_json).collect::<Vec<_>>()]),
            Value::Map(m) => json!([
                "map",
                m.iter()
                    .map(|(k, v)| json!([k.to_json(), v.to_json()]))
                    .collect::<Vec<_>>()
            ]),
        }
    }

    pub fn from_json(j: &Json) -> Result<Value, ValueError> {
        let bad = || ValueError::Malformed(j.to_string());
        if let Json::Array(a) = j {
            match (a.first().and_then(Json::as_str), a.get(1), a.len()) {
                (Some("set"), Some(Json::Array(items)), 2) => {
                    return items
                        .iter()
                        .map(Atom::from_json)
                        .collect::<Result<_, _>>()
                        .map(Value::Set);
                }
                (Some("map"), Some(Json::Array(pairs)), 2) => {
                    let mut out = Vec::with_capacity(pairs.len());
                    for p in pairs {
                        match p.as_array().map(Vec::as_slice) {
                            Some([k, v]) => out.push((Atom::from_json(k)?, Atom::from_json(v)?)),
                            _ => return Err(bad()),
                        }
                    }
                    return Ok(Value::Map(out));
                }
                _ => {}
            }
        }
        Atom::from_json(j).map(Value::Atom)
    }

    /// The value as a set of atoms: a bare atom is the one-element set OVSDB abbreviates.
    pub fn as_set(&self) -> Option<Vec<Atom>> {
        match self {
            Value::Atom(a) => Some(vec![a.clone()]),
            Value::Set(s) => Some(s.clone()),
            Value::Map(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(text: &str) -> Value {
        let j: Json = serde_json::from_str(text).unwrap();
        let v = Value::from_json(&j).unwrap();
        assert_eq!(v.to_json(), j, "{text} did not round-trip");
        v
    }

    #[test]
    fn atoms_round_trip() {
        assert_eq!(round_trip("42"), Value::Atom(Atom::Integer(42)));
        assert_eq!(round_trip("1.5"), Value::Atom(Atom::Real(1.5)));
        assert_eq!(round_trip("true"), Value::Atom(Atom::Boolean(true)));
        assert_eq!(
            round_trip("\"br-int\""),
            Value::Atom(Atom::String("br-int".into()))
        );
        assert_eq!(
            round_trip(r#"["uuid","36bf19c3-9ee7-4e4b-8d31-2d2f9b1ed0a8"]"#),
            Value::Atom(Atom::Uuid("36bf19c3-9ee7-4e4b-8d31-2d2f9b1ed0a8".into()))
        );
        assert_eq!(
            round_trip(r#"["named-uuid","p1"]"#),
            Value::Atom(Atom::NamedUuid("p1".into()))
        );
    }

    #[test]
    fn sets_and_maps_round_trip() {
        assert_eq!(round_trip(r#"["set",[]]"#), Value::Set(vec![]));
        assert_eq!(
            round_trip(r#"["set",[["uuid","a"],["uuid","b"]]]"#),
            Value::Set(vec![Atom::Uuid("a".into()), Atom::Uuid("b".into())])
        );
        assert_eq!(
            round_trip(r#"["map",[["remote_ip","flow"],["key","flow"]]]"#),
            Value::Map(vec![
                (
                    Atom::String("remote_ip".into()),
                    Atom::String("flow".into())
                ),
                (Atom::String("key".into()), Atom::String("flow".into())),
            ])
        );
    }

    #[test]
    fn single_element_set_shorthand_reads_as_a_set() {
        let v = round_trip(r#"["uuid","a"]"#);
        assert_eq!(v.as_set(), Some(vec![Atom::Uuid("a".into())]));
        assert_eq!(round_trip(r#"["set",[]]"#).as_set(), Some(vec![]));
    }

    #[test]
    fn malformed_values_are_refused_with_the_text() {
        for bad in [
            r#"["set",1]"#,
            r#"["map",[["a"]]]"#,
            r#"["uuid",1]"#,
            "null",
            r#"{"a":1}"#,
        ] {
            let j: Json = serde_json::from_str(bad).unwrap();
            let err = Value::from_json(&j).unwrap_err();
            assert!(err.to_string().contains(&j.to_string()), "{err}");
        }
    }
}
