//! The disaster drill of `examples/disaster-drill.rs`, run as a test: the same code the
//! README's first command runs.

#[allow(dead_code)]
#[path = "../../../../examples/disaster-drill.rs"]
mod scenario;

use crate::support::BARMAN;

#[test]
fn the_disaster_drill_recovers_to_the_moment_before_each_mistake() {
    let Some(pg_bin) = barman_testkit::require() else {
        return;
    };
    let options = scenario::DrillOptions {
        barman: BARMAN.into(),
        pg_bin,
        keep: false,
        verbose: true,
    };
    match scenario::run(&options) {
        Ok(report) => println!("{report}"),
        Err(report) => panic!("{report}"),
    }
}
