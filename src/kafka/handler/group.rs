//! Consumer groups: FindCoordinator, JoinGroup, Heartbeat, LeaveGroup, SyncGroup,
//! DescribeGroups and ListGroups, answered by the group coordinator.

use std::sync::Arc;

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{
    BrokerId, DescribeGroupsRequest, DescribeGroupsResponse, FindCoordinatorRequest,
    FindCoordinatorResponse, GroupId, HeartbeatRequest, HeartbeatResponse, JoinGroupRequest,
    JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, ListGroupsRequest,
    ListGroupsResponse, SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::{text, Handler};
use crate::group::{
    BlockingCoordinator, GroupError, JoinRequest, MemberRef, Protocol, SyncRequest,
};
use crate::kafka::decode::RequestHeader;
use crate::kafka::errors::{self, code_of_broker, code_of_group};

impl Handler {
    pub(super) fn groups(&self) -> Result<Arc<BlockingCoordinator>, i16> {
        self.broker
            .group_coordinator()
            .map_err(|error| code_of_broker(&error))
    }

    pub(super) fn find_coordinator(
        &self,
        version: i16,
        request: &FindCoordinatorRequest,
    ) -> FindCoordinatorResponse {
        let mut response = FindCoordinatorResponse::default();
        response.node_id = BrokerId(-1);
        response.port = -1;
        if request.key_type != 0 {
            // Transaction coordinators: transactions are not built.
            response.error_code = errors::COORDINATOR_NOT_AVAILABLE;
            response.error_message = Some(text("transactions are not supported"));
            return response;
        }
        match self.coordinator_endpoint(request.key.as_str()) {
            Ok((id, host, port)) => {
                response.node_id = BrokerId(id);
                response.host = text(&host);
                response.port = i32::from(port);
            }
            Err(code) => response.error_code = code,
        }
        if version >= 1 && response.error_code != errors::NONE {
            response.error_message = Some(text("group coordinator unavailable"));
        }
        response
    }

    /// Where `group`'s coordinator serves Kafka's protocol: the leader of the group's
    /// `__consumer_offsets` partition, this broker or another.
    fn coordinator_endpoint(&self, group: &str) -> Result<(i32, String, u16), i16> {
        let id = self
            .broker
            .group_coordinator_id(group)
            .map_err(|error| code_of_broker(&error))?;
        if id == self.broker.id() {
            // Its coordinator loads the partition on first use.
            self.groups()?;
            return Ok((id, self.host.clone(), self.port));
        }
        let session = self.broker.replication().session();
        crate::replication::broker_endpoints(session.as_ref())
            .ok()
            .and_then(|mut endpoints| endpoints.remove(&id))
            .map(|endpoint| (id, endpoint.host, endpoint.port))
            .ok_or(errors::COORDINATOR_NOT_AVAILABLE)
    }

    pub(super) fn join_group(
        &self,
        version: i16,
        header: &RequestHeader,
        request: &JoinGroupRequest,
    ) -> JoinGroupResponse {
        let mut response = JoinGroupResponse::default();
        response.generation_id = -1;
        response.member_id = request.member_id.clone();
        let groups = match self.groups() {
            Ok(groups) => groups,
            Err(code) => {
                response.error_code = code;
                return response;
            }
        };
        let join = JoinRequest {
            group_id: request.group_id.0.to_string(),
            member_id: request.member_id.to_string(),
            group_instance_id: request.group_instance_id.as_ref().map(|id| id.to_string()),
            client_id: header.client_id.clone().unwrap_or_default(),
            client_host: String::new(),
            session_timeout_ms: request.session_timeout_ms,
            rebalance_timeout_ms: if version == 0 {
                request.session_timeout_ms
            } else {
                request.rebalance_timeout_ms
            },
            protocol_type: request.protocol_type.to_string(),
            protocols: request
                .protocols
                .iter()
                .map(|protocol| Protocol {
                    name: protocol.name.to_string(),
                    metadata: protocol.metadata.clone(),
                })
                .collect(),
            // KIP-394: JoinGroup v4+ clients expect the member-id round.
            require_known_member_id: version >= 4,
        };
        match groups.join(&join) {
            Ok(joined) => {
                response.generation_id = joined.generation_id;
                response.protocol_type = Some(request.protocol_type.clone());
                response.protocol_name = joined.protocol_name.as_deref().map(text);
                response.leader = text(&joined.leader_id);
                response.member_id = text(&joined.member_id);
                response.skip_assignment = joined.skip_assignment;
                response.members = joined
                    .members
                    .iter()
                    .map(|member| {
                        let mut answer = JoinGroupResponseMember::default();
                        answer.member_id = text(&member.member_id);
                        answer.group_instance_id = member.group_instance_id.as_deref().map(text);
                        answer.metadata = member.metadata.clone();
                        answer
                    })
                    .collect();
            }
            Err(error) => {
                response.error_code = code_of_group(&error);
                if let GroupError::MemberIdRequired { member_id, .. } = &error {
                    response.member_id = text(member_id);
                }
            }
        }
        response
    }

    pub(super) fn member(
        group_id: &GroupId,
        member_id: &StrBytes,
        instance_id: Option<&StrBytes>,
        generation_id: i32,
    ) -> MemberRef {
        MemberRef {
            group_id: group_id.0.to_string(),
            member_id: member_id.to_string(),
            group_instance_id: instance_id.map(|id| id.to_string()),
            generation_id,
        }
    }

    pub(super) fn sync_group(&self, request: &SyncGroupRequest) -> SyncGroupResponse {
        let mut response = SyncGroupResponse::default();
        response.protocol_type = request.protocol_type.clone();
        response.protocol_name = request.protocol_name.clone();
        let sync = SyncRequest {
            member: Self::member(
                &request.group_id,
                &request.member_id,
                request.group_instance_id.as_ref(),
                request.generation_id,
            ),
            assignments: request
                .assignments
                .iter()
                .map(|assignment| {
                    (
                        assignment.member_id.to_string(),
                        assignment.assignment.clone(),
                    )
                })
                .collect(),
        };
        match self
            .groups()
            .and_then(|groups| groups.sync(&sync).map_err(|error| code_of_group(&error)))
        {
            Ok(assignment) => response.assignment = assignment,
            Err(code) => response.error_code = code,
        }
        response
    }

    pub(super) fn heartbeat(&self, request: &HeartbeatRequest) -> HeartbeatResponse {
        let mut response = HeartbeatResponse::default();
        let member = Self::member(
            &request.group_id,
            &request.member_id,
            request.group_instance_id.as_ref(),
            request.generation_id,
        );
        if let Err(code) = self.groups().and_then(|groups| {
            groups
                .heartbeat(&member)
                .map_err(|error| code_of_group(&error))
        }) {
            response.error_code = code;
        }
        response
    }

    pub(super) fn leave_group(
        &self,
        version: i16,
        request: &LeaveGroupRequest,
    ) -> LeaveGroupResponse {
        let mut response = LeaveGroupResponse::default();
        let groups = match self.groups() {
            Ok(groups) => groups,
            Err(code) => {
                response.error_code = code;
                return response;
            }
        };
        let group = request.group_id.0.as_str();
        if version < 3 {
            if let Err(error) = groups.leave(group, request.member_id.as_str(), None) {
                response.error_code = code_of_group(&error);
            }
            return response;
        }
        for member in &request.members {
            let mut answer = MemberResponse::default();
            answer.member_id = member.member_id.clone();
            answer.group_instance_id = member.group_instance_id.clone();
            if let Err(error) = groups.leave(
                group,
                member.member_id.as_str(),
                member.group_instance_id.as_ref().map(|id| id.as_str()),
            ) {
                answer.error_code = code_of_group(&error);
            }
            response.members.push(answer);
        }
        response
    }

    pub(super) fn list_groups(&self, request: &ListGroupsRequest) -> ListGroupsResponse {
        let mut response = ListGroupsResponse::default();
        match self.groups() {
            Ok(groups) => {
                for listing in groups.list() {
                    let state = listing.state.kafka_name();
                    if !request.states_filter.is_empty()
                        && !request
                            .states_filter
                            .iter()
                            .any(|wanted| wanted.as_str().eq_ignore_ascii_case(state))
                    {
                        continue;
                    }
                    let mut group = ListedGroup::default();
                    group.group_id = GroupId(text(&listing.group_id));
                    group.protocol_type = text(listing.protocol_type.as_deref().unwrap_or(""));
                    group.group_state = text(state);
                    group.group_type = text("classic");
                    response.groups.push(group);
                }
            }
            Err(code) => response.error_code = code,
        }
        response
    }

    pub(super) fn describe_groups(
        &self,
        request: &DescribeGroupsRequest,
    ) -> DescribeGroupsResponse {
        let mut response = DescribeGroupsResponse::default();
        let groups = self.groups();
        for group_id in &request.groups {
            let mut described = DescribedGroup::default();
            described.group_id = group_id.clone();
            described.authorized_operations = i32::MIN;
            let result = groups.as_ref().map_err(|&code| code).and_then(|groups| {
                groups
                    .describe(group_id.0.as_str())
                    .map_err(|error| code_of_group(&error))
            });
            match result {
                Ok(description) => {
                    described.group_state = text(description.state.kafka_name());
                    described.protocol_type =
                        text(description.protocol_type.as_deref().unwrap_or(""));
                    described.protocol_data = text(description.protocol.as_deref().unwrap_or(""));
                    described.members = description
                        .members
                        .iter()
                        .map(|member| {
                            let mut answer = DescribedGroupMember::default();
                            answer.member_id = text(&member.member_id);
                            answer.group_instance_id =
                                member.group_instance_id.as_deref().map(text);
                            answer.client_id = text(&member.client_id);
                            answer.client_host = text(&member.client_host);
                            answer.member_metadata = member.metadata.clone();
                            answer.member_assignment = member.assignment.clone();
                            answer
                        })
                        .collect();
                }
                Err(code) if code == errors::GROUP_ID_NOT_FOUND => {
                    // Kafka describes an unknown group as Dead, without an error.
                    described.group_state = text("Dead");
                }
                Err(code) => described.error_code = code,
            }
            response.groups.push(described);
        }
        response
    }
}
