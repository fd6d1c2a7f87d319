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

mod durable {
    use super::*;
    use logbus::coordinator::{CoordError, DurabilityConfig, Session, SessionConfig, SessionId};

    /// A durable coordinator with the directory it lives in.
    struct InTempDir {
        coordinator: MemoryCoordinator,
        _dir: tempfile::TempDir,
    }

    impl Coordinator for InTempDir {
        fn session(&self, config: SessionConfig) -> Result<Arc<dyn Session>, CoordError> {
            self.coordinator.session(config)
        }

        fn expire_session(&self, session: SessionId) -> Result<(), CoordError> {
            self.coordinator.expire_session(session)
        }
    }

    fn durable_coordinator() -> Arc<dyn Coordinator> {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(1_700_000_000_000));
        let durability = DurabilityConfig {
            snapshot_every_txns: 7,
            ..DurabilityConfig::default()
        };
        let coordinator = MemoryCoordinator::open_with(
            dir.path(),
            clock,
            MemoryCoordinatorConfig::default(),
            durability,
        )
        .unwrap();
        Arc::new(InTempDir {
            coordinator,
            _dir: dir,
        })
    }

    logbus::coordinator_conformance_tests!(durable_coordinator);
}
