//! Energy maths (placeholder, being written).
