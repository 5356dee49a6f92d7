//! The deterministic consensus simulator and scenario helpers.
