//! The generic conformance suite, run against `MemoryCoordinator` on the system clock and on a
//! manual clock.

use std::sync::Arc;

use logbus::coordinator::{Coordinator, ManualClock, MemoryCoordinator, MemoryCoordinatorConfig};

fn memory_coordinator() -> Arc<dyn Coordinator> {
    Arc::new(MemoryCoordinator::new())
}

logbus::coordinator_conformance_tests!(memory_coordinator);

mod manual_clock {
    use super::*;

    fn memory_coordinator_on_manual_clock() -> Arc<dyn Coordinator> {
        let clock = Arc::new(ManualClock::new(1_700_000_000_000));
        Arc::new(MemoryCoordinator::with_clock(
            clock,
            MemoryCoordinatorConfig::default(),
        ))
    }

    logbus::coordinator_conformance_tests!(memory_coordinator_on_manual_clock);
}
