//! deyehard-store (being written).
