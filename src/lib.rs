//! deyehard facade (being written).
