//! Weir guest SDK (being written).
