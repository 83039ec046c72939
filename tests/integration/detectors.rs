//! The statistics core against SciPy / scikit-learn reference values (every
//! case of every fixture file), and property tests of the sketches.

mod cbpe;
mod fixtures;
mod properties;
