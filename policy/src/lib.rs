//! The flow compiler. See docs/pipeline.md.
