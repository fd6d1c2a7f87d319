//! The coordinator's state machine under a manual `now`: generations, each fencing error, static
//! membership, expiry, and offset commits that a stale member can never move.

use std::collections::BTreeMap;
use std::sync::Arc;

use logbus::group::{
    CommitRequest, GroupError, GroupState, MemberRef, OffsetAndMetadata, Range, TopicPartition,
};

#[path = "support/groups.rs"]
mod groups;
use groups::{coordinator, settle, Phase, TestMember, SESSION_MS};

fn topics() -> BTreeMap<String, u32> {
    [("t".to_owned(), 4)].into_iter().collect()
}

fn member(group: &str) -> TestMember {
    TestMember::new(group, Arc::new(Range), topics())
}

fn commit(member: &MemberRef, offset: u64) -> CommitRequest {
    CommitRequest {
        member: member.clone(),
        offsets: vec![(TopicPartition::new("t", 0), OffsetAndMetadata::new(offset))],
    }
}

fn committed(core: &logbus::group::GroupCoordinator, group: &str) -> Option<u64> {
    core.committed(group, None)
        .unwrap()
        .get(&TopicPartition::new("t", 0))
        .map(|o| o.offset)
}

/// Prepares and applies a commit, as the blocking coordinator does after storing it.
fn do_commit(
    core: &mut logbus::group::GroupCoordinator,
    request: &CommitRequest,
    now: i64,
) -> Result<(), GroupError> {
    core.prepare_commit(request, now)?;
    core.apply_commit(request, now);
    Ok(())
}

#[test]
fn two_members_settle_in_one_generation_with_disjoint_partitions() {
    let mut core = coordinator();
    let mut members = [member("g"), member("g")];
    assert!(settle(&mut core, &mut members, 0, 10));
    assert_eq!(members[0].generation, members[1].generation);
    assert_eq!(members[0].owned.len() + members[1].owned.len(), 4);
    assert!(members[0]
        .owned
        .iter()
        .all(|p| !members[1].owned.contains(p)));
    let description = core.describe("g").unwrap();
    assert_eq!(description.state, GroupState::Stable);
    assert_eq!(description.protocol.as_deref(), Some("range"));
    assert_eq!(description.members.len(), 2);
}

#[test]
fn heartbeat_says_rebalance_in_progress_when_a_member_joins() {
    let mut core = coordinator();
    let mut first = [member("g")];
    assert!(settle(&mut core, &mut first, 0, 5));
    let mut second = member("g");
    second.join(&mut core, 1).unwrap();
    assert_eq!(second.phase, Phase::Joining);
    assert!(matches!(
        core.heartbeat(&first[0].member_ref(), 2),
        Err(GroupError::RebalanceInProgress { .. })
    ));
}

#[test]
fn old_generation_is_illegal_for_heartbeat_and_commit_and_never_moves_the_offset() {
    let mut core = coordinator();
    let mut members = vec![member("g")];
    assert!(settle(&mut core, &mut members, 0, 5));
    let stale = members[0].member_ref();
    do_commit(&mut core, &commit(&stale, 10), 1).unwrap();
    members.push(member("g"));
    assert!(settle(&mut core, &mut members, 2, 10));
    assert!(members[0].generation > stale.generation_id);
    assert!(matches!(
        core.heartbeat(&stale, 3),
        Err(GroupError::IllegalGeneration { .. })
    ));
    assert!(matches!(
        do_commit(&mut core, &commit(&stale, 5), 3),
        Err(GroupError::IllegalGeneration { .. })
    ));
    assert_eq!(committed(&core, "g"), Some(10));
}

#[test]
fn a_member_that_left_is_unknown_and_cannot_commit() {
    let mut core = coordinator();
    let mut members = [member("g"), member("g")];
    assert!(settle(&mut core, &mut members, 0, 10));
    let gone = members[0].member_ref();
    core.leave("g", &gone.member_id, None, 1).unwrap();
    assert!(matches!(
        core.heartbeat(&gone, 2),
        Err(GroupError::UnknownMemberId { .. })
    ));
    assert!(matches!(
        do_commit(&mut core, &commit(&gone, 1), 2),
        Err(GroupError::UnknownMemberId { .. })
    ));
    assert_eq!(committed(&core, "g"), None);
}

#[test]
fn commits_while_the_assignment_is_being_distributed_are_rebalance_in_progress() {
    let mut core = coordinator();
    let mut leader = member("g");
    let mut follower = member("g");
    leader.join(&mut core, 0).unwrap();
    let _ = settle(&mut core, std::slice::from_mut(&mut leader), 0, 3);
    follower.join(&mut core, 1).unwrap();
    // The leader's heartbeat finds the rebalance, it rejoins, the join completes, both sync.
    let _ = leader.step(&mut core, 1);
    let _ = follower.step(&mut core, 1);
    assert_eq!(core.describe("g").unwrap().state, GroupState::Stable);
    // Force CompletingRebalance: a third member joins, everyone rejoins, but nobody syncs yet.
    let mut third = member("g");
    third.join(&mut core, 2).unwrap();
    let join = |m: &TestMember| {
        groups::join_request(
            "g",
            &m.member_id,
            None,
            vec![logbus::group::Protocol {
                name: "range".into(),
                metadata: bytes::Bytes::new(),
            }],
        )
    };
    core.join(&join(&leader), 2).unwrap();
    let status = core.join(&join(&follower), 2).unwrap();
    assert!(matches!(status, logbus::group::JoinStatus::Joined(_)));
    assert_eq!(
        core.describe("g").unwrap().state,
        GroupState::CompletingRebalance
    );
    let generation = core.describe("g").unwrap().generation_id;
    let current = MemberRef {
        generation_id: generation,
        ..follower.member_ref()
    };
    assert!(matches!(
        do_commit(&mut core, &commit(&current, 3), 3),
        Err(GroupError::RebalanceInProgress { .. })
    ));
}

#[test]
fn standalone_commits_need_an_empty_group() {
    let mut core = coordinator();
    let standalone = MemberRef::standalone("g");
    do_commit(&mut core, &commit(&standalone, 7), 0).unwrap();
    assert_eq!(committed(&core, "g"), Some(7));
    assert_eq!(core.describe("g").unwrap().state, GroupState::Empty);
    let mut members = [member("g")];
    assert!(settle(&mut core, &mut members, 1, 5));
    assert!(matches!(
        do_commit(&mut core, &commit(&standalone, 1), 2),
        Err(GroupError::UnknownMemberId { .. })
    ));
    assert_eq!(committed(&core, "g"), Some(7));
    // A member commit to a group that does not exist is an illegal generation.
    let ghost = MemberRef {
        generation_id: 3,
        ..MemberRef::standalone("nobody")
    };
    assert!(matches!(
        do_commit(&mut core, &commit(&ghost, 1), 2),
        Err(GroupError::IllegalGeneration { .. })
    ));
}

#[test]
fn a_member_that_stops_heartbeating_expires_after_its_session() {
    let mut core = coordinator();
    let mut members = vec![member("g"), member("g")];
    assert!(settle(&mut core, &mut members, 0, 10));
    let crashed = members.remove(1);
    let half = i64::from(SESSION_MS) / 2;
    for now in [half, 2 * half - 1] {
        core.tick(now);
        members[0].step(&mut core, now).unwrap();
    }
    assert_eq!(
        core.describe("g").unwrap().members.len(),
        2,
        "not yet expired"
    );
    core.tick(i64::from(SESSION_MS) + 1);
    assert!(matches!(
        core.heartbeat(&crashed.member_ref(), i64::from(SESSION_MS) + 1),
        Err(GroupError::UnknownMemberId { .. })
    ));
    assert!(settle(
        &mut core,
        &mut members,
        i64::from(SESSION_MS) + 2,
        10
    ));
    assert_eq!(members[0].owned.len(), 4);
}

#[test]
fn a_member_that_does_not_rejoin_is_dropped_at_the_rebalance_timeout() {
    let mut core = coordinator();
    let mut members = vec![member("g"), member("g")];
    assert!(settle(&mut core, &mut members, 0, 10));
    let mut newcomer = member("g");
    newcomer.join(&mut core, 1).unwrap();
    // members[1] keeps heartbeating (getting RebalanceInProgress) but never rejoins: a consumer
    // stuck between polls.
    let stuck = members[1].member_ref();
    members[0].step(&mut core, 1).unwrap();
    let mut now = 1;
    while now < i64::from(groups::REBALANCE_MS) + 2 {
        now += 1_000;
        let _ = core.heartbeat(&stuck, now);
        core.tick(now);
    }
    let mut live = vec![members.remove(0), newcomer];
    assert!(settle(&mut core, &mut live, now, 10));
    assert_eq!(core.describe("g").unwrap().members.len(), 2);
    assert!(core.heartbeat(&stuck, now).is_err());
}

#[test]
fn static_member_rejoining_within_its_session_keeps_its_assignment_without_a_rebalance() {
    let mut core = coordinator();
    let mut members = [member("g"), member("g")];
    members[0].instance = Some("instance-a".into());
    members[1].instance = Some("instance-b".into());
    assert!(settle(&mut core, &mut members, 0, 10));
    let generation = members[0].generation;
    let before = members[0].owned.clone();
    let old = members[0].member_ref();
    // Restart: a fresh member with the same instance id and no member id.
    let mut restarted = member("g");
    restarted.instance = Some("instance-a".into());
    restarted.join(&mut core, 5_000).unwrap();
    let _ = settle(&mut core, std::slice::from_mut(&mut restarted), 5_000, 5);
    assert_eq!(restarted.phase, Phase::Stable);
    assert_eq!(restarted.generation, generation, "no rebalance");
    assert_eq!(restarted.owned, before);
    assert_ne!(restarted.member_id, old.member_id);
    members[1].step(&mut core, 5_001).unwrap();
    assert_eq!(
        members[1].generation, generation,
        "the other member saw no rebalance"
    );
    // The old incarnation is fenced.
    assert!(matches!(
        core.heartbeat(&old, 5_002),
        Err(GroupError::FencedInstanceId { .. })
    ));
    assert!(matches!(
        do_commit(&mut core, &commit(&old, 1), 5_002),
        Err(GroupError::FencedInstanceId { .. })
    ));
}

#[test]
fn static_member_gone_past_its_session_is_removed() {
    let mut core = coordinator();
    let mut members = vec![member("g"), member("g")];
    members[1].instance = Some("instance-b".into());
    assert!(settle(&mut core, &mut members, 0, 10));
    let gone = members.remove(1);
    let late = i64::from(SESSION_MS) + 1;
    core.tick(late);
    assert!(core.heartbeat(&gone.member_ref(), late).is_err());
    assert!(settle(&mut core, &mut members, late, 10));
    assert_eq!(members[0].owned.len(), 4);
}

#[test]
fn admin_errors_name_the_problem() {
    let mut core = coordinator();
    assert!(matches!(
        core.describe("none"),
        Err(GroupError::GroupIdNotFound { .. })
    ));
    assert!(matches!(
        core.delete("none"),
        Err(GroupError::GroupIdNotFound { .. })
    ));
    let mut members = [member("g")];
    assert!(settle(&mut core, &mut members, 0, 5));
    assert!(matches!(
        core.delete("g"),
        Err(GroupError::NonEmptyGroup { .. })
    ));
    members[0].leave(&mut core, 1);
    assert_eq!(core.describe("g").unwrap().state, GroupState::Empty);
    core.take_outbox();
    core.delete("g").unwrap();
    let tombstones = core.take_outbox();
    assert!(tombstones.iter().all(|r| r.value.is_none()) && !tombstones.is_empty());
    assert!(matches!(
        core.describe("g"),
        Err(GroupError::GroupIdNotFound { .. })
    ));
}

#[test]
fn partitions_not_served_answer_not_coordinator_or_loading() {
    let mut core =
        logbus::group::GroupCoordinator::new(logbus::group::CoordinatorConfig::default(), 0);
    let partition = core.partition_for("g");
    assert!(matches!(
        core.describe("g"),
        Err(GroupError::NotCoordinator { .. })
    ));
    core.begin_load(partition);
    assert!(matches!(
        core.describe("g"),
        Err(GroupError::CoordinatorLoadInProgress { .. })
    ));
    core.fail_load(partition);
    assert!(matches!(
        core.describe("g"),
        Err(GroupError::CoordinatorNotAvailable { .. })
    ));
    assert!(matches!(
        core.describe(""),
        Err(GroupError::InvalidGroupId { .. })
    ));
}

#[test]
fn session_timeouts_outside_the_limits_are_refused() {
    let mut core = coordinator();
    let mut request = groups::join_request("g", "", None, vec![]);
    request.session_timeout_ms = 10;
    assert!(matches!(
        core.join(&request, 0),
        Err(GroupError::InvalidSessionTimeout { .. })
    ));
}
