//! Authentication primitives (placeholder, being written).
