//! A linearizability checker for coordinator histories, and a recorder of random concurrent
//! histories to feed it.
//!
//! The checker is Wing and Gong's search with Lowe's memoization, as Porcupine implements it:
//! walk the history in time order, try to linearize each pending call whose outcome the
//! sequential model accepts, remember every (set of linearized ops, model state) pair already
//! explored, and backtrack when a return is reached whose call could not be linearized. Each op
//! touches one node of a flat directory, so the history is checked per node (linearizability is
//! compositional, P-compositionality in Porcupine's terms).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};

use super::{CoordError, Coordinator, CreateMode, Session, SessionConfig, Version, Watch};

/// The directory the recorded histories use.
pub const DIR: &str = "/linearizability";

/// One operation on a node, by key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Input {
    /// Create with a value.
    Create(u64),
    /// Set a value at a version.
    Set(u64, Version),
    /// Delete at a version.
    Delete(Version),
    /// Read.
    Get,
}

/// What an operation returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Output {
    /// Success; for `Set`, the new version.
    Ok(i32),
    /// A read: value and version, or no node.
    Read(Option<(u64, i32)>),
    /// `NoNode`.
    NoNode,
    /// `NodeExists`.
    NodeExists,
    /// `BadVersion`.
    BadVersion,
}

/// A completed operation with its invocation and response times (one shared counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operation {
    /// The node.
    pub key: u8,
    /// What was asked.
    pub input: Input,
    /// What came back.
    pub output: Output,
    /// When it was invoked.
    pub call: u64,
    /// When it returned (after `call`).
    pub ret: u64,
}

/// The sequential model of one node: its value and version, or absent.
pub type NodeState = Option<(u64, i32)>;

/// The state after `input` returning `output` from `state`, or `None` if the model cannot
/// return that.
pub fn step(state: NodeState, input: Input, output: Output) -> Option<NodeState> {
    let (expected, next) = match (state, input) {
        (_, Input::Get) => (Output::Read(state), state),
        (None, Input::Create(value)) => (Output::Ok(0), Some((value, 0))),
        (Some(_), Input::Create(_)) => (Output::NodeExists, state),
        (None, Input::Set(..) | Input::Delete(_)) => (Output::NoNode, state),
        (
            Some((_, version)),
            Input::Set(_, Version::Exactly(e)) | Input::Delete(Version::Exactly(e)),
        ) if e != version => (Output::BadVersion, state),
        (Some((_, version)), Input::Set(value, _)) => {
            (Output::Ok(version + 1), Some((value, version + 1)))
        }
        (Some(_), Input::Delete(_)) => (Output::Ok(0), None),
    };
    (expected == output).then_some(next)
}

/// Whether the history is linearizable against the model, every node starting absent.
pub fn check(history: &[Operation]) -> bool {
    let mut by_key: HashMap<u8, Vec<Operation>> = HashMap::new();
    for op in history {
        by_key.entry(op.key).or_default().push(*op);
    }
    by_key.values().all(|ops| check_partition(ops))
}

/// The doubly linked list of call and return entries the search lifts ops out of.
struct Entries {
    /// `op` index of each entry; calls are `2 * op`, returns `2 * op + 1`.
    prev: Vec<usize>,
    next: Vec<usize>,
    head: usize,
    tail: usize,
}

impl Entries {
    fn new(ops: &[Operation]) -> Entries {
        let mut order: Vec<(u64, usize)> = ops
            .iter()
            .enumerate()
            .flat_map(|(i, op)| [(op.call, 2 * i), (op.ret, 2 * i + 1)])
            .collect();
        // Times are distinct; at a tie a call sorts before a return, the permissive choice.
        order.sort_unstable();
        let (head, tail) = (2 * ops.len(), 2 * ops.len() + 1);
        let mut prev = vec![0; tail + 1];
        let mut next = vec![0; tail + 1];
        let mut last = head;
        for &(_, entry) in &order {
            next[last] = entry;
            prev[entry] = last;
            last = entry;
        }
        next[last] = tail;
        prev[tail] = last;
        Entries {
            prev,
            next,
            head,
            tail,
        }
    }

    fn unlink(&mut self, entry: usize) {
        let (p, n) = (self.prev[entry], self.next[entry]);
        self.next[p] = n;
        self.prev[n] = p;
    }

    fn relink(&mut self, entry: usize) {
        let (p, n) = (self.prev[entry], self.next[entry]);
        self.next[p] = entry;
        self.prev[n] = entry;
    }

    /// Removes a call and its return.
    fn lift(&mut self, call: usize) {
        self.unlink(call);
        self.unlink(call + 1);
    }

    /// Undoes [`Entries::lift`] (in reverse order, as dancing links require).
    fn unlift(&mut self, call: usize) {
        self.relink(call + 1);
        self.relink(call);
    }
}

fn check_partition(ops: &[Operation]) -> bool {
    let mut entries = Entries::new(ops);
    let mut linearized = vec![0u64; ops.len().div_ceil(64)];
    let mut seen: HashSet<(Vec<u64>, NodeState)> = HashSet::new();
    let mut stack: Vec<(usize, NodeState)> = Vec::new();
    let mut state: NodeState = None;
    let mut entry = entries.next[entries.head];
    while entries.next[entries.head] != entries.tail {
        if entry.is_multiple_of(2) {
            let op = entry / 2;
            if let Some(next_state) = step(state, ops[op].input, ops[op].output) {
                linearized[op / 64] |= 1 << (op % 64);
                if seen.insert((linearized.clone(), next_state)) {
                    stack.push((entry, state));
                    state = next_state;
                    entries.lift(entry);
                    entry = entries.next[entries.head];
                    continue;
                }
                linearized[op / 64] &= !(1 << (op % 64));
            }
            entry = entries.next[entry];
        } else {
            let Some((call, previous)) = stack.pop() else {
                return false;
            };
            state = previous;
            let op = call / 2;
            linearized[op / 64] &= !(1 << (op % 64));
            entries.unlift(call);
            entry = entries.next[call];
        }
    }
    true
}

/// The shape of recorded histories.
#[derive(Debug, Clone, Copy)]
pub struct RunConfig {
    /// Concurrent sessions, one thread each.
    pub sessions: usize,
    /// Operations per session.
    pub ops_per_session: usize,
    /// Nodes operated on.
    pub keys: u8,
    /// Seed of the operation mix.
    pub seed: u64,
}

/// SplitMix64: a small, seedable generator for operation mixes.
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number below `bound` (which must be positive).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }
}

/// Spins for a random short while, as a network round trip would, so that operations of
/// different sessions overlap and the checker has orders to search.
fn delay(rng: &mut SplitMix64) {
    for _ in 0..rng.below(500) {
        std::hint::spin_loop();
    }
}

fn node_path(key: u8) -> String {
    format!("{DIR}/k{key}")
}

fn random_input(rng: &mut SplitMix64, value: u64) -> Input {
    let version = |rng: &mut SplitMix64| match rng.below(3) {
        0 => Version::Any,
        _ => Version::Exactly(i32::try_from(rng.below(3)).unwrap_or(0)),
    };
    match rng.below(10) {
        0..=1 => Input::Create(value),
        2..=4 => Input::Set(value, version(rng)),
        5 => Input::Delete(version(rng)),
        _ => Input::Get,
    }
}

fn execute(session: &dyn Session, key: u8, input: Input) -> Output {
    let path = node_path(key);
    let result = match input {
        Input::Create(value) => session
            .create(&path, &value.to_be_bytes(), CreateMode::Persistent)
            .map(|_| Output::Ok(0)),
        Input::Set(value, version) => session
            .set_data(&path, &value.to_be_bytes(), version)
            .map(|s| Output::Ok(s.version)),
        Input::Delete(version) => session.delete(&path, version).map(|()| Output::Ok(0)),
        Input::Get => match session.get_data(&path, Watch::None) {
            Ok((data, stat)) => {
                let bytes: [u8; 8] = data.as_slice().try_into().expect("every write is 8 bytes");
                Ok(Output::Read(Some((
                    u64::from_be_bytes(bytes),
                    stat.version,
                ))))
            }
            Err(CoordError::NoNode { .. }) => Ok(Output::Read(None)),
            Err(error) => Err(error),
        },
    };
    match result {
        Ok(output) => output,
        Err(CoordError::NoNode { .. }) => Output::NoNode,
        Err(CoordError::NodeExists { .. }) => Output::NodeExists,
        Err(CoordError::BadVersion { .. }) => Output::BadVersion,
        Err(error) => panic!("unexpected error in a linearizability run: {error}"),
    }
}

/// Runs random operations from concurrent sessions on a fresh coordinator and returns the
/// history.
///
/// # Panics
/// On an error other than `NoNode`, `NodeExists` or `BadVersion`.
pub fn record_history(coordinator: &Arc<dyn Coordinator>, config: RunConfig) -> Vec<Operation> {
    let setup = coordinator
        .session(SessionConfig::default())
        .expect("session");
    setup
        .create(DIR, b"", CreateMode::Persistent)
        .expect("create the directory");
    let clock = AtomicU64::new(0);
    let barrier = Barrier::new(config.sessions);
    let mut history = Vec::new();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..config.sessions)
            .map(|client| {
                let (clock, barrier) = (&clock, &barrier);
                scope.spawn(move || {
                    let session = coordinator
                        .session(SessionConfig::default())
                        .expect("session");
                    let mut rng = SplitMix64(
                        config.seed ^ (client as u64).wrapping_mul(0xA24B_AED4_963E_E407),
                    );
                    barrier.wait();
                    (0..config.ops_per_session)
                        .map(|i| {
                            let key = u8::try_from(rng.below(u64::from(config.keys))).unwrap_or(0);
                            let input = random_input(&mut rng, ((client as u64) << 32) | i as u64);
                            let call = clock.fetch_add(1, Ordering::SeqCst);
                            delay(&mut rng);
                            let output = execute(session.as_ref(), key, input);
                            delay(&mut rng);
                            let ret = clock.fetch_add(1, Ordering::SeqCst);
                            Operation {
                                key,
                                input,
                                output,
                                call,
                                ret,
                            }
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for worker in workers {
            history.extend(worker.join().expect("worker thread"));
        }
    });
    history
}

/// Records `runs` random histories on fresh coordinators and checks each: 4 to 8 sessions of
/// 50 to 100 operations on 1 to 4 nodes, chosen from `seed`.
///
/// # Panics
/// If a history is not linearizable (the message holds the seed to replay it).
pub fn check_random_histories(factory: &dyn Fn() -> Arc<dyn Coordinator>, runs: usize, seed: u64) {
    let mut rng = SplitMix64(seed);
    for run in 0..runs {
        let config = RunConfig {
            sessions: 4 + usize::try_from(rng.below(5)).unwrap_or(0),
            ops_per_session: 50 + usize::try_from(rng.below(51)).unwrap_or(0),
            keys: 1 + u8::try_from(rng.below(4)).unwrap_or(0),
            seed: rng.next_u64(),
        };
        let history = record_history(&factory(), config);
        assert_eq!(history.len(), config.sessions * config.ops_per_session);
        assert!(
            check(&history),
            "run {run} of seed {seed} ({config:?}) is not linearizable: {history:?}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(key: u8, input: Input, output: Output, call: u64, ret: u64) -> Operation {
        Operation {
            key,
            input,
            output,
            call,
            ret,
        }
    }

    #[test]
    fn accepts_a_sequential_history() {
        let history = [
            op(0, Input::Get, Output::Read(None), 0, 1),
            op(0, Input::Create(5), Output::Ok(0), 2, 3),
            op(0, Input::Set(6, Version::Exactly(0)), Output::Ok(1), 4, 5),
            op(
                0,
                Input::Set(7, Version::Exactly(0)),
                Output::BadVersion,
                6,
                7,
            ),
            op(0, Input::Get, Output::Read(Some((6, 1))), 8, 9),
            op(0, Input::Delete(Version::Exactly(1)), Output::Ok(0), 10, 11),
            op(0, Input::Delete(Version::Any), Output::NoNode, 12, 13),
        ];
        assert!(check(&history));
    }

    #[test]
    fn accepts_reads_overlapping_a_write_either_way() {
        let history = [
            op(0, Input::Create(1), Output::Ok(0), 0, 1),
            op(0, Input::Set(2, Version::Any), Output::Ok(1), 2, 7),
            op(0, Input::Get, Output::Read(Some((2, 1))), 3, 4),
            op(0, Input::Get, Output::Read(Some((1, 0))), 5, 6),
        ];
        // The second read returned the old value after the first read saw the new one: that
        // is not linearizable even though both overlap the write.
        assert!(!check(&history));
        let history = [
            op(0, Input::Create(1), Output::Ok(0), 0, 1),
            op(0, Input::Set(2, Version::Any), Output::Ok(1), 2, 7),
            op(0, Input::Get, Output::Read(Some((1, 0))), 3, 4),
            op(0, Input::Get, Output::Read(Some((2, 1))), 5, 6),
        ];
        assert!(check(&history));
    }

    #[test]
    fn rejects_a_stale_read() {
        let history = [
            op(0, Input::Create(1), Output::Ok(0), 0, 1),
            op(0, Input::Set(2, Version::Any), Output::Ok(1), 2, 3),
            op(0, Input::Get, Output::Read(Some((1, 0))), 4, 5),
        ];
        assert!(!check(&history));
    }

    #[test]
    fn rejects_a_lost_update() {
        let history = [
            op(0, Input::Create(1), Output::Ok(0), 0, 1),
            op(0, Input::Set(2, Version::Exactly(0)), Output::Ok(1), 2, 5),
            op(0, Input::Set(3, Version::Exactly(0)), Output::Ok(1), 3, 4),
        ];
        assert!(!check(&history));
    }

    #[test]
    fn rejects_two_creates_without_a_delete() {
        let history = [
            op(0, Input::Create(1), Output::Ok(0), 0, 3),
            op(0, Input::Create(2), Output::Ok(0), 1, 2),
        ];
        assert!(!check(&history));
    }

    #[test]
    fn rejects_a_value_never_written() {
        let history = [
            op(0, Input::Create(1), Output::Ok(0), 0, 1),
            op(0, Input::Get, Output::Read(Some((9, 0))), 2, 3),
        ];
        assert!(!check(&history));
    }

    #[test]
    fn rejects_a_read_after_delete_returned() {
        let history = [
            op(0, Input::Create(1), Output::Ok(0), 0, 1),
            op(0, Input::Delete(Version::Any), Output::Ok(0), 2, 3),
            op(0, Input::Get, Output::Read(Some((1, 0))), 4, 5),
        ];
        assert!(!check(&history));
    }

    #[test]
    fn rejects_versions_going_backwards() {
        let history = [
            op(0, Input::Create(1), Output::Ok(0), 0, 1),
            op(0, Input::Set(2, Version::Any), Output::Ok(1), 2, 9),
            op(0, Input::Set(3, Version::Any), Output::Ok(2), 3, 10),
            op(0, Input::Get, Output::Read(Some((3, 2))), 4, 5),
            op(0, Input::Get, Output::Read(Some((2, 1))), 6, 7),
        ];
        assert!(!check(&history));
    }

    #[test]
    fn rejects_a_bad_version_error_that_no_order_explains() {
        let history = [
            op(0, Input::Create(1), Output::Ok(0), 0, 1),
            op(
                0,
                Input::Set(2, Version::Exactly(0)),
                Output::BadVersion,
                2,
                3,
            ),
        ];
        assert!(!check(&history));
    }

    #[test]
    fn checks_each_node_on_its_own() {
        let good = op(1, Input::Create(1), Output::Ok(0), 0, 1);
        let bad = op(2, Input::Get, Output::Read(Some((5, 0))), 2, 3);
        assert!(check(&[good]));
        assert!(!check(&[good, bad]));
    }

    #[test]
    fn search_handles_a_wide_concurrent_window() {
        // 12 concurrent creates of distinct values with exactly one success, then a read of
        // the winner: every interleaving must be considered, and memoization keeps it fast.
        let mut history: Vec<Operation> = (0..12)
            .map(|i| {
                op(
                    0,
                    Input::Create(i),
                    if i == 7 {
                        Output::Ok(0)
                    } else {
                        Output::NodeExists
                    },
                    i,
                    100 + i,
                )
            })
            .collect();
        history.push(op(0, Input::Get, Output::Read(Some((7, 0))), 200, 201));
        assert!(check(&history));
        history.push(op(0, Input::Get, Output::Read(Some((3, 0))), 202, 203));
        assert!(!check(&history));
    }
}
