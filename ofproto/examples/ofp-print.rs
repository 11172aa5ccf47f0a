//! ofp-print: decodes OpenFlow 1.3 messages given as hex (arguments, or stdin) and prints them
//! in the style of `ovs-ofctl ofp-print`. Exit status 0 when everything decoded, 1 with the
//! reason when something did not, 2 when the input is not hex.

use std::io::Read;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("usage: ofp-print [HEX...]   (no arguments: read hex from stdin)");
        println!(
            "Whitespace, ':' and a leading 0x are ignored. Several messages may follow each other."
        );
        return ExitCode::SUCCESS;
    }
    let text = if args.is_empty() {
        let mut s = String::new();
        if let Err(e) = std::io::stdin().read_to_string(&mut s) {
            eprintln!("ofp-print: reading stdin: {e}");
            return ExitCode::from(2);
        }
        s
    } else {
        args.join(" ")
    };
    let bytes = match ofproto::msg::print::parse_hex(&text) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("ofp-print: {e}");
            return ExitCode::from(2);
        }
    };
    match ofproto::msg::print::ofp_print(&bytes) {
        Ok(s) => {
            print!("{s}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "ofp-print: bad message: {e} (OpenFlow error {})",
                e.ofp_error()
            );
            ExitCode::FAILURE
        }
    }
}
