//! Weir guest SDK macros (being written).
