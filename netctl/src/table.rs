//! Output: aligned tables for people, JSON for scripts.

use serde::Serialize;
use serde_json::Value;

/// Rows as an aligned table under `headers`: a header line, a line of dashes, then the rows,
/// columns two spaces apart (widths in characters), trailing spaces trimmed.
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..headers.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([headers[i].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        let s: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(s.join("  ").trim_end());
        out.push('\n');
    };
    line(&headers.iter().map(|h| h.to_string()).collect::<Vec<_>>());
    line(&widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>());
    for r in rows {
        line(r);
    }
    out
}

/// A JSON field as a table cell: strings bare, lists comma-separated, null empty.
fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a
            .iter()
            .map(|x| x.as_str().map(str::to_string).unwrap_or(x.to_string()))
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    }
}

/// Prints the objects of a JSON list as a table of their `fields` under `headers`, or the JSON
/// as it is.
pub fn print(json_out: bool, value: &Value, headers: &[&str], fields: &[&str]) {
    if json_out {
        print_json(value);
        return;
    }
    let rows: Vec<Vec<String>> = value
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|o| fields.iter().map(|f| cell(&o[*f])).collect())
        .collect();
    print!("{}", render(headers, &rows));
}

/// Pretty JSON on stdout.
pub fn print_json<T: Serialize + ?Sized>(value: &T) {
    println!("{}", pretty(value));
}

/// Pretty JSON.
pub fn pretty<T: Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string_pretty(value).expect("JSON prints")
}

/// Typed objects as the JSON value tables read (and `--json` prints).
pub fn json_of<T: Serialize + ?Sized>(value: &T) -> Value {
    serde_json::to_value(value).expect("objects convert to JSON")
}
