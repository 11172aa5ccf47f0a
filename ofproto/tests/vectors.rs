//! Open vSwitch's own OpenFlow 1.3 test vectors (`tests/ofp-print.at`): every message decodes (or,
//! for the "bad" ones, is refused with the error OVS names), re-encodes to the same bytes, and
//! prints what OVS prints.

use std::path::PathBuf;

use bytes::BytesMut;
use ofproto::header::frame_len;
use ofproto::msg::print::ofp_print;
use ofproto::msg::Message;

struct Vector {
    title: String,
    hex: String,
    ovs: String,
}

fn vectors() -> Vec<Vector> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/vectors/ovs-ofp-print-of13.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "reading {}: {e} (shared/ must sit beside the repository)",
            path.display()
        )
    });
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("a JSON object per line");
            Vector {
                title: v["title"].as_str().unwrap().to_string(),
                hex: v["hex"].as_str().unwrap().to_string(),
                // The .at files escape brackets as [[ ]] and end some texts with m4 quoting.
                ovs: v["ovs_ofp_print"]
                    .as_str()
                    .unwrap()
                    .replace("[[", "[")
                    .replace("]]", "]")
                    .replace("], [dnl\n", ""),
            }
        })
        .collect()
}

/// What we print must equal OVS's text, line for line. OVS also prints the fields it extracts from
/// a packet-in's packet data; we do not parse packet contents, so for those only the first line
/// is compared.
fn compare(v: &Vector, ours: &str) -> Result<(), String> {
    let theirs: Vec<&str> = v.ovs.lines().collect();
    let mine: Vec<&str> = ours.lines().collect();
    // Table features are kept raw (the pipeline never needs them), so only the first line of
    // that vector is compared; its bytes still round-trip below.
    let n = if v.title.starts_with("OFPT_PACKET_IN") || v.title.starts_with("OFPST_TABLE_FEATURES")
    {
        1
    } else {
        theirs.len()
    };
    for i in 0..n {
        let (t, m) = (
            theirs.get(i).copied().unwrap_or(""),
            mine.get(i).copied().unwrap_or(""),
        );
        if t.trim_end() != m.trim_end() {
            return Err(format!("line {i}:\n  ovs:  {t}\n  ours: {m}"));
        }
    }
    Ok(())
}

#[test]
fn every_ovs_vector_decodes_reencodes_and_prints_like_ovs() {
    let vs = vectors();
    assert!(
        vs.len() >= 30,
        "expected the OVS vectors, found {}",
        vs.len()
    );
    let mut failures = Vec::new();
    for v in &vs {
        let bytes = hex::decode(&v.hex).unwrap();
        let printed = ofp_print(&bytes);
        if v.title.starts_with("OFPT_METER_MOD request - bad") || v.title.starts_with("bad") {
            match printed {
                Ok(p) => failures.push(format!("{}: accepted a bad message:\n{p}", v.title)),
                Err(e) => {
                    let want = v
                        .ovs
                        .split("***decode error: ")
                        .nth(1)
                        .and_then(|s| s.split("***").next());
                    if let Some(want) = want {
                        if e.ofp_error().name() != want {
                            failures.push(format!(
                                "{}: refused with {} ({e}), OVS says {want}",
                                v.title,
                                e.ofp_error().name()
                            ));
                        }
                    }
                }
            }
            continue;
        }
        let printed = match printed {
            Ok(p) => p,
            Err(e) => {
                failures.push(format!("{}: {e}", v.title));
                continue;
            }
        };
        if let Err(why) = compare(v, &printed) {
            failures.push(format!("{}: {why}", v.title));
        }
        // Re-encode every message of the vector into a buffer that starts with garbage.
        let mut rest = &bytes[..];
        let mut out = BytesMut::from(&[0xa5u8; 3][..]);
        while let Ok(Some(n)) = frame_len(rest) {
            let (h, m) = Message::decode(&rest[..n]).unwrap();
            m.encode(h.xid, &mut out);
            rest = &rest[n..];
        }
        if out[3..] != bytes[..] {
            failures.push(format!(
                "{}: re-encoded bytes differ\n  want {}\n  got  {}",
                v.title,
                v.hex,
                hex::encode(&out[3..])
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} vectors failed:\n{}",
        failures.len(),
        vs.len(),
        failures.join("\n\n")
    );
}
