//! JoinGroup's member-id-required round (KIP-394), under a manual `now`: a dynamic member that
//! joins with an empty member id and `require_known_member_id` is answered `MemberIdRequired`
//! with an id held pending (no member, no rebalance); it joins again with that id to become a
//! member. A pending id not used within its session timeout is forgotten; static members skip
//! the round.

use std::collections::BTreeMap;
use std::sync::Arc;

use logbus::group::{GroupCoordinator, GroupError, GroupState, JoinRequest, JoinStatus, Range};

#[path = "support/groups.rs"]
mod groups;
use groups::{coordinator, settle, Phase, TestMember, SESSION_MS};

fn member(group: &str) -> TestMember {
    let topics: BTreeMap<String, u32> = [("t".to_owned(), 4)].into_iter().collect();
    TestMember::new(group, Arc::new(Range), topics)
}

/// A JoinGroup v4+ request as a Kafka client sends it.
fn v4_join(member_id: &str, instance: Option<&str>) -> JoinRequest {
    let protocols = vec![logbus::group::Protocol {
        name: "range".into(),
        metadata: bytes::Bytes::from(
            logbus::group::protocol::Subscription {
                topics: vec!["t".into()],
                user_data: None,
                owned_partitions: Vec::new(),
                generation: -1,
            }
            .encode(),
        ),
    }];
    JoinRequest {
        require_known_member_id: true,
        ..groups::join_request("g", member_id, instance, protocols)
    }
}

/// The id a `MemberIdRequired` answer hands out.
fn required_id(core: &mut GroupCoordinator, now: i64) -> String {
    match core.join(&v4_join("", None), now) {
        Err(GroupError::MemberIdRequired { group, member_id }) => {
            assert_eq!(group, "g");
            assert!(!member_id.is_empty());
            member_id
        }
        other => panic!("expected MemberIdRequired, got {other:?}"),
    }
}

/// A test member that completed the round: it joins (and then steps) with the handed-out id.
fn member_with_id(id: String) -> TestMember {
    let mut newcomer = member("g");
    newcomer.member_id = id;
    newcomer
}

#[test]
fn an_empty_member_id_gets_an_id_to_join_again_with_and_only_then_becomes_a_member() {
    let mut core = coordinator();
    let first = required_id(&mut core, 0);
    let second = required_id(&mut core, 0);
    assert_ne!(first, second, "every answer hands out a fresh id");
    let description = core.describe("g").unwrap();
    assert_eq!(description.state, GroupState::Empty);
    assert!(
        description.members.is_empty(),
        "pending ids are not members"
    );

    let mut members = [
        member_with_id(first.clone()),
        member_with_id(second.clone()),
    ];
    assert!(settle(&mut core, &mut members, 1, 10));
    let ids: Vec<&str> = members.iter().map(|m| m.member_id.as_str()).collect();
    assert_eq!(
        ids,
        [first.as_str(), second.as_str()],
        "they joined as the ids handed out"
    );
    assert_eq!(members[0].generation, 1, "one rebalance for both");
    assert_eq!(members[0].owned.len() + members[1].owned.len(), 4);
}

#[test]
fn a_pending_id_starts_no_rebalance_until_it_joins() {
    let mut core = coordinator();
    let mut members = vec![member("g")];
    assert!(settle(&mut core, &mut members, 0, 5));
    let generation = members[0].generation;

    let id = required_id(&mut core, 1);
    core.heartbeat(&members[0].member_ref(), 2)
        .expect("the group stays Stable while an id is pending");
    assert_eq!(core.describe("g").unwrap().generation_id, generation);

    members.push(member_with_id(id));
    assert!(settle(&mut core, &mut members, 3, 10));
    assert_eq!(members[0].generation, generation + 1);
    assert_eq!(core.describe("g").unwrap().members.len(), 2);
}

#[test]
fn a_pending_id_not_used_within_its_session_is_forgotten() {
    let mut core = coordinator();
    let kept = required_id(&mut core, 0);
    let forgotten = required_id(&mut core, 0);
    let session = i64::from(SESSION_MS);
    assert_eq!(
        core.next_deadline_ms(),
        Some(session),
        "expiry is scheduled"
    );

    core.tick(session - 1);
    let JoinStatus::Pending { member_id } = core.join(&v4_join(&kept, None), session - 1).unwrap()
    else {
        panic!("the join waits for the other pending id to come back");
    };
    assert_eq!(member_id, kept);
    assert_eq!(core.poll_join("g", &kept, None).unwrap(), None);
    core.tick(session);
    assert!(
        core.poll_join("g", &kept, None).unwrap().is_some(),
        "the forgotten id no longer holds up the join"
    );
    assert!(matches!(
        core.join(&v4_join(&forgotten, None), session),
        Err(GroupError::UnknownMemberId { member_id, .. }) if member_id == forgotten
    ));
}

#[test]
fn a_member_id_neither_member_nor_pending_is_unknown() {
    let mut core = coordinator();
    let _pending = required_id(&mut core, 0);
    for request in [v4_join("made-up", None), {
        let mut old_style = v4_join("made-up", None);
        old_style.require_known_member_id = false;
        old_style
    }] {
        assert!(matches!(
            core.join(&request, 1),
            Err(GroupError::UnknownMemberId { member_id, .. }) if member_id == "made-up"
        ));
    }
    // An unknown group too.
    let mut elsewhere = v4_join("made-up", None);
    elsewhere.group_id = "other".into();
    assert!(matches!(
        core.join(&elsewhere, 1),
        Err(GroupError::UnknownMemberId { .. })
    ));
}

#[test]
fn static_members_skip_the_round() {
    let mut core = coordinator();
    let status = core.join(&v4_join("", Some("instance-a")), 0).unwrap();
    let JoinStatus::Joined(response) = status else {
        panic!("a lone static member joins at once: {status:?}");
    };
    assert!(!response.member_id.is_empty());
    assert_eq!(core.describe("g").unwrap().members.len(), 1);
    // A pending id is for a dynamic member: it does not name a static one.
    let id = required_id(&mut core, 1);
    assert!(matches!(
        core.join(&v4_join(&id, Some("instance-b")), 1),
        Err(GroupError::UnknownMemberId { .. })
    ));
}

#[test]
fn the_join_phase_waits_for_a_pending_id_to_come_back() {
    let mut core = coordinator();
    let mut members = vec![member("g")];
    assert!(settle(&mut core, &mut members, 0, 5));
    let generation = members[0].generation;
    let pending = required_id(&mut core, 1);
    // Another member joins the old way: a rebalance starts, the old member rejoins.
    members.push(member("g"));
    members[1].join(&mut core, 2).unwrap();
    members[0].step(&mut core, 2).unwrap();
    assert_eq!(members[0].phase, Phase::Joining);
    assert_eq!(
        core.describe("g").unwrap().state,
        GroupState::PreparingRebalance,
        "held up by the pending id"
    );
    members.push(member_with_id(pending));
    assert!(settle(&mut core, &mut members, 3, 10));
    assert_eq!(
        members[0].generation,
        generation + 1,
        "one rebalance for all three"
    );
    let owned: usize = members.iter().map(|m| m.owned.len()).sum();
    assert_eq!(owned, 4);
}

#[test]
fn a_pending_id_that_never_returns_holds_the_join_phase_only_until_it_expires() {
    let mut core = coordinator();
    let mut members = vec![member("g")];
    assert!(settle(&mut core, &mut members, 0, 5));
    let _lost = required_id(&mut core, 0);
    members.push(member("g"));
    members[1].join(&mut core, 1).unwrap();
    members[0].step(&mut core, 1).unwrap();
    assert_eq!(
        core.describe("g").unwrap().state,
        GroupState::PreparingRebalance
    );
    let expiry = i64::from(SESSION_MS);
    assert_eq!(core.next_deadline_ms(), Some(expiry));
    core.tick(expiry);
    assert!(settle(&mut core, &mut members, expiry, 10));
    assert_eq!(core.describe("g").unwrap().members.len(), 2);
}

#[test]
fn leaving_with_a_pending_id_forgets_it_and_releases_the_join_phase() {
    let mut core = coordinator();
    let mut members = vec![member("g")];
    assert!(settle(&mut core, &mut members, 0, 5));
    let pending = required_id(&mut core, 1);
    members.push(member("g"));
    members[1].join(&mut core, 2).unwrap();
    members[0].step(&mut core, 2).unwrap();
    core.leave("g", &pending, None, 3).unwrap();
    assert!(settle(&mut core, &mut members, 3, 10));
    assert!(matches!(
        core.join(&v4_join(&pending, None), 4),
        Err(GroupError::UnknownMemberId { .. })
    ));
    assert_eq!(core.describe("g").unwrap().members.len(), 2);
}
