//! host-sim: a simulated TOTVS RM host (to be written).
