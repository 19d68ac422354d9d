//! Weir test rig (being written).
