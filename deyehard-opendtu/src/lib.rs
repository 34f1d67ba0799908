//! deyehard-opendtu (being written).
