//! The `weft-cni` binary: CNI environment and stdin in, a result or an error object out.

use std::io::{Read, Write};

fn main() {
    let mut stdin = vec![];
    let env = weft_cni::config::Env::from_process();
    // VERSION may come without stdin; nothing else does.
    if let Err(e) = std::io::stdin().read_to_end(&mut stdin) {
        let err = weft_cni::error::CniError::new(
            weft_cni::error::code::IO_FAILURE,
            "cannot read stdin",
            e.to_string(),
        );
        println!("{}", err.to_json("1.1.0"));
        std::process::exit(1);
    }
    let out = weft_cni::plugin::run(&env, &stdin);
    let mut o = std::io::stdout().lock();
    if !out.stdout.is_empty() {
        let _ = writeln!(o, "{}", out.stdout);
    }
    let _ = o.flush();
    std::process::exit(out.exit);
}
