//! deyehard-solarman (being written).
