//! tae-sim: a stand-in for the TAE REST API (to be written).
