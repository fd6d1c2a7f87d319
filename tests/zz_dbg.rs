#[path = "support/sim.rs"]
mod sim;
use logbus::log::FlushPolicy;
#[test]
fn dbg() {
    let seed: u64 = std::env::var("S").unwrap().parse().unwrap();
    let config = sim::SimConfig { flush: if seed % 2 == 0 { FlushPolicy::OsDecides } else { FlushPolicy::EveryAppend }, ..Default::default() };
    let mut sim = sim::Sim::new(seed, config);
    let mut seen = 0;
    let filt = |s: String| s.lines().filter(|l| !l.contains("p0") ).filter(|l| { true }).collect::<Vec<_>>().join("\n");
    for _ in 0..300 { sim.tick(); if sim.rng.chance(4) { sim.random_fault(); }
        if sim.log.len() != seen { seen = sim.log.len(); 
            let acked = sim.acked.iter().filter(|a| a.partition == 1).map(|a| a.offset).max();
            eprintln!("== {:?} max acked p1 {:?}\n{}", sim.log.last(), acked, filt(sim.debug_state())); }
    }
    let settled = sim.heal_and_settle(300);
    eprintln!("settled {settled}\n{}", filt(sim.debug_state()));
}
