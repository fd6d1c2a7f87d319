//! Consumer group bodies: FindCoordinator, JoinGroup, Heartbeat, LeaveGroup, SyncGroup,
//! DescribeGroups and ListGroups.

use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    DescribeGroupsRequest, FindCoordinatorRequest, GroupId, HeartbeatRequest, JoinGroupRequest,
    LeaveGroupRequest, ListGroupsRequest, SyncGroupRequest,
};

use super::reader::Reader;
use super::DecodeError;

pub(super) fn find_coordinator(
    r: &mut Reader<'_>,
    version: i16,
) -> Result<FindCoordinatorRequest, DecodeError> {
    let key = r.string("key")?;
    let key_type = if version >= 1 { r.i8("key_type")? } else { 0 };
    let unknown_tagged_fields = r.tagged_fields("FindCoordinatorRequest")?;
    Ok(FindCoordinatorRequest::default()
        .with_key(key)
        .with_key_type(key_type)
        .with_unknown_tagged_fields(unknown_tagged_fields))
}

pub(super) fn join_group(
    r: &mut Reader<'_>,
    version: i16,
) -> Result<JoinGroupRequest, DecodeError> {
    let group_id = r.string("group_id")?;
    let session_timeout_ms = r.i32("session_timeout_ms")?;
    let rebalance_timeout_ms = if version >= 1 {
        r.i32("rebalance_timeout_ms")?
    } else {
        -1
    };
    let member_id = r.string("member_id")?;
    let group_instance_id = if version >= 5 {
        r.nullable_string("group_instance_id")?
    } else {
        None
    };
    let protocol_type = r.string("protocol_type")?;
    let protocols = r.array("protocols", join_group_protocol)?;
    let unknown_tagged_fields = r.tagged_fields("JoinGroupRequest")?;
    Ok(JoinGroupRequest::default()
        .with_group_id(GroupId(group_id))
        .with_session_timeout_ms(session_timeout_ms)
        .with_rebalance_timeout_ms(rebalance_timeout_ms)
        .with_member_id(member_id)
        .with_group_instance_id(group_instance_id)
        .with_protocol_type(protocol_type)
        .with_protocols(protocols)
        .with_unknown_tagged_fields(unknown_tagged_fields))
}

fn join_group_protocol(r: &mut Reader<'_>) -> Result<JoinGroupRequestProtocol, DecodeError> {
    let name = r.string("protocols.name")?;
    let metadata = r.bytes("protocols.metadata")?;
    let unknown_tagged_fields = r.tagged_fields("JoinGroupRequestProtocol")?;
    Ok(JoinGroupRequestProtocol::default()
        .with_name(name)
        .with_metadata(metadata)
        .with_unknown_tagged_fields(unknown_tagged_fields))
}

pub(super) fn heartbeat(r: &mut Reader<'_>, version: i16) -> Result<HeartbeatRequest, DecodeError> {
    let group_id = r.string("group_id")?;
    let generation_id = r.i32("generation_id")?;
    let member_id = r.string("member_id")?;
    let group_instance_id = if version >= 3 {
        r.nullable_string("group_instance_id")?
    } else {
        None
    };
    let unknown_tagged_fields = r.tagged_fields("HeartbeatRequest")?;
    Ok(HeartbeatRequest::default()
        .with_group_id(GroupId(group_id))
        .with_generation_id(generation_id)
        .with_member_id(member_id)
        .with_group_instance_id(group_instance_id)
        .with_unknown_tagged_fields(unknown_tagged_fields))
}

pub(super) fn leave_group(
    r: &mut Reader<'_>,
    version: i16,
) -> Result<LeaveGroupRequest, DecodeError> {
    let group_id = r.string("group_id")?;
    let member_id = if version <= 2 {
        r.string("member_id")?
    } else {
        Default::default()
    };
    let members = if version >= 3 {
        r.array("members", member_identity)?
    } else {
        Vec::new()
    };
    let unknown_tagged_fields = r.tagged_fields("LeaveGroupRequest")?;
    Ok(LeaveGroupRequest::default()
        .with_group_id(GroupId(group_id))
        .with_member_id(member_id)
        .with_members(members)
        .with_unknown_tagged_fields(unknown_tagged_fields))
}

fn member_identity(r: &mut Reader<'_>) -> Result<MemberIdentity, DecodeError> {
    // Only read from v3, where both fields are present.
    let member_id = r.string("members.member_id")?;
    let group_instance_id = r.nullable_string("members.group_instance_id")?;
    let unknown_tagged_fields = r.tagged_fields("MemberIdentity")?;
    Ok(MemberIdentity::default()
        .with_member_id(member_id)
        .with_group_instance_id(group_instance_id)
        .with_unknown_tagged_fields(unknown_tagged_fields))
}

pub(super) fn sync_group(
    r: &mut Reader<'_>,
    version: i16,
) -> Result<SyncGroupRequest, DecodeError> {
    let group_id = r.string("group_id")?;
    let generation_id = r.i32("generation_id")?;
    let member_id = r.string("member_id")?;
    let group_instance_id = if version >= 3 {
        r.nullable_string("group_instance_id")?
    } else {
        None
    };
    let protocol_type = if version >= 5 {
        r.nullable_string("protocol_type")?
    } else {
        None
    };
    let protocol_name = if version >= 5 {
        r.nullable_string("protocol_name")?
    } else {
        None
    };
    let assignments = r.array("assignments", sync_group_assignment)?;
    let unknown_tagged_fields = r.tagged_fields("SyncGroupRequest")?;
    Ok(SyncGroupRequest::default()
        .with_group_id(GroupId(group_id))
        .with_generation_id(generation_id)
        .with_member_id(member_id)
        .with_group_instance_id(group_instance_id)
        .with_protocol_type(protocol_type)
        .with_protocol_name(protocol_name)
        .with_assignments(assignments)
        .with_unknown_tagged_fields(unknown_tagged_fields))
}

fn sync_group_assignment(r: &mut Reader<'_>) -> Result<SyncGroupRequestAssignment, DecodeError> {
    let member_id = r.string("assignments.member_id")?;
    let assignment = r.bytes("assignments.assignment")?;
    let unknown_tagged_fields = r.tagged_fields("SyncGroupRequestAssignment")?;
    Ok(SyncGroupRequestAssignment::default()
        .with_member_id(member_id)
        .with_assignment(assignment)
        .with_unknown_tagged_fields(unknown_tagged_fields))
}

pub(super) fn describe_groups(
    r: &mut Reader<'_>,
    version: i16,
) -> Result<DescribeGroupsRequest, DecodeError> {
    let groups = r.array("groups", |r| r.string("groups").map(GroupId))?;
    let include_authorized_operations = if version >= 3 {
        r.bool("include_authorized_operations")?
    } else {
        false
    };
    let unknown_tagged_fields = r.tagged_fields("DescribeGroupsRequest")?;
    Ok(DescribeGroupsRequest::default()
        .with_groups(groups)
        .with_include_authorized_operations(include_authorized_operations)
        .with_unknown_tagged_fields(unknown_tagged_fields))
}

pub(super) fn list_groups(
    r: &mut Reader<'_>,
    version: i16,
) -> Result<ListGroupsRequest, DecodeError> {
    let states_filter = if version >= 4 {
        r.array("states_filter", |r| r.string("states_filter"))?
    } else {
        Vec::new()
    };
    let unknown_tagged_fields = r.tagged_fields("ListGroupsRequest")?;
    Ok(ListGroupsRequest::default()
        .with_states_filter(states_filter)
        .with_unknown_tagged_fields(unknown_tagged_fields))
}
