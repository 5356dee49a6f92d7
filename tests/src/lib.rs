//! The deterministic consensus simulator and scenario helpers.
//!
//! The simulator lives in [`sim`]; the scenario tests that drive it are in `tests/tests/`.

pub mod sim;
