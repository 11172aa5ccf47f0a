//! netctl: the command line for Weft

fn main() {}
