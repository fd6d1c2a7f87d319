#[path = "support/sim.rs"]
mod sim;
use logbus::log::FlushPolicy;
#[test]
fn dbg() {
    let seed: u64 = std::env::var("S").unwrap().parse().unwrap();
    let n: usize = std::env::var("N").unwrap().parse().unwrap();
    let config = sim::SimConfig { flush: if seed % 2 == 0 { FlushPolicy::OsDecides } else { FlushPolicy::EveryAppend }, ..Default::default() };
    let mut sim = sim::Sim::new(seed, config);
    for i in 0..n { sim.tick(); if sim.rng.chance(4) { sim.random_fault(); }
        let acked: Vec<_> = sim.acked.iter().filter(|a| a.partition == 1 && a.offset >= 12 && a.offset <= 17).map(|a| (a.offset, String::from_utf8_lossy(&a.value).to_string())).collect();
        eprintln!("---- tick {i} log {:?} acked {:?}\n{}", sim.log.last(), acked, sim.debug_state().lines().filter(|l| l.contains("p1") || l.contains("broker")|| l.contains("state") ).collect::<Vec<_>>().join("\n")); }
}
